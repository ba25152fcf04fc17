"""Rendered scripts are cached by content: a cached script is byte for byte the rendered one, and any change
of the plan or of a template (shipped or a site's) renders anew."""

from __future__ import annotations

from pathlib import Path

from hpc_tf.core.plan import ScriptPlan
from hpc_tf.runs.render import builtin_template_dir, render_script

PLAN = ScriptPlan("slurm", [("job-name", "x"), ("nodes", "1")], ["srun", "python", "-u", "-m", "hpc_tf.job", "."])


def test_a_cached_script_is_the_rendered_one(tmp_path: Path) -> None:
    fresh = render_script(PLAN)
    assert render_script(PLAN, cache_dir=str(tmp_path)) == fresh  # rendered, then kept
    assert len(list((tmp_path / "scripts").glob("*.sh"))) == 1
    assert render_script(PLAN, cache_dir=str(tmp_path)) == fresh  # read back


def test_a_changed_plan_or_template_renders_anew(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    render_script(PLAN, cache_dir=cache)
    other = ScriptPlan("slurm", [("job-name", "y"), ("nodes", "1")], PLAN.launch)
    assert "--job-name=y" in render_script(other, cache_dir=cache)
    site = tmp_path / "site"
    site.mkdir()
    (site / "_prologue.sh.j2").write_text((builtin_template_dir() / "_prologue.sh.j2").read_text() + "# site v1\n")
    assert "# site v1" in render_script(PLAN, str(site), cache)
    (site / "_prologue.sh.j2").write_text((builtin_template_dir() / "_prologue.sh.j2").read_text() + "# site v2\n")
    assert "# site v2" in render_script(PLAN, str(site), cache)
    assert len(list((tmp_path / "cache" / "scripts").glob("*.sh"))) == 4
