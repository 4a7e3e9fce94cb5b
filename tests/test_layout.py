"""One owner of the run folder's layout (mnist_mlp.layout): the rules, the tools and the report
take every path from it, so that moving an output is one edit, and adding one is a line in
the layout and a line in its rule."""

import re

import pytest
from conftest import REPO, copy_workflow, planned_jobs, run_snakemake

from mnist_mlp import layout

PACKAGE = REPO / "workflow" / "mnist_mlp"
RULES = REPO / "workflow" / "rules"


def literal_paths(text: str) -> list[str]:
    """Quoted strings that are paths of a run (results/, logs/, benchmarks/ ...)."""
    return re.findall(r"""["']((?:results|logs|benchmarks)/[\w/{}.\-]+)["']""", text)


def test_the_rules_take_every_path_from_the_layout():
    for path in sorted(RULES.glob("*.smk")):
        assert literal_paths(path.read_text()) == [], path.name
    assert literal_paths((REPO / "Snakefile").read_text()) == []


def test_no_module_restates_a_rules_outputs_logs_or_benchmarks():
    """Only layout.py names the files of a run; progress, the run state, the report, classify,
    the tools in bench/ ask it."""
    known = {
        pattern
        for entry in layout.RULES.values()
        for pattern in (*entry.outputs.values(), *entry.only.values(), entry.log, entry.benchmark)
        if pattern
    }
    for path in sorted([*PACKAGE.glob("*.py"), *(REPO / "bench").glob("*.py")]):
        if path.name == "layout.py":
            continue
        named = [p for p in literal_paths(path.read_text()) if p in known]
        assert named == [], f"{path.relative_to(REPO)} names {named}: ask mnist_mlp.layout"


@pytest.mark.workflow
def test_every_file_a_run_makes_is_known_by_its_rule(tiny_run):
    """Snakemake's own plan of the whole tiny run (every job forced) against the layout: each
    output of each job maps back to that job's rule, its log and benchmark are the layout's.
    The retrainings lie behind the ranking (a checkpoint): a plan that forces it cannot list
    them, so they are forced in a second plan."""
    workdir, configfile = tiny_run
    plan = run_snakemake(workdir, configfile, "--dry-run", "--forceall").stdout
    plan += run_snakemake(workdir, configfile, "--dry-run", "--forcerun", "retrain").stdout
    jobs = re.findall(
        r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)+)", plan, flags=re.MULTILINE
    )
    checked = set()
    for rule, body in jobs:
        if rule == "all":
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, flags=re.MULTILINE))
        wildcards = dict(re.findall(r"(\w+)=([^,]+)", fields.get("wildcards", "")))
        for output in fields["output"].split(", "):
            found = layout.rule_of(output)
            assert found is not None and found[0] == rule, (rule, output)
        assert fields["log"] == layout.log(rule, **wildcards), rule
        if layout.RULES[rule].benchmark:
            assert fields["benchmark"] == layout.benchmark(rule, **wildcards), rule
        checked.add(rule)
    assert {"cross_validate", "retrain", "select_winner", "plot_gradient_ascent"} <= checked


@pytest.mark.workflow
def test_moving_an_output_is_one_edit(tiny_run, tmp_path):
    """In a copy of the workflow, one line in layout.py moves the winning network: Snakemake
    plans select_winner again to make it there, the export and figures that read it follow, and
    nothing else (rules, scripts, the package) needed an edit."""
    (tmp_path / "code").mkdir()
    snakefile = copy_workflow(tmp_path / "code")
    copied = tmp_path / "code" / "workflow" / "mnist_mlp" / "layout.py"
    source = copied.read_text()
    anchor = '"model": "results/winner/winning_net.dat",'
    assert anchor in source
    copied.write_text(source.replace(anchor, '"model": "results/winner/moved_net.dat",'))
    jobs = planned_jobs(*tiny_run, snakefile=snakefile)
    assert jobs.pop("select_winner") == 1 and jobs.pop("all") == 1
    assert {"plot_receptive_fields", "plot_gradient_ascent"} <= set(jobs)
    assert not {"cross_validate", "retrain", "rank_trials"} & set(jobs)


@pytest.mark.workflow
def test_adding_an_output_to_a_rule_needs_no_edit_elsewhere(tiny_run, tmp_path):
    """In a copy of the workflow, select_winner gets an output more: its line in layout.py and
    the rule's line naming it. Snakemake plans the rule again for it, and rule all, the
    tooling and the report (readers of the layout) need no edit."""
    (tmp_path / "code").mkdir()
    snakefile = copy_workflow(tmp_path / "code")
    code = tmp_path / "code" / "workflow"
    anchor = '"model": "results/winner/winning_net.dat",'
    table = code / "mnist_mlp" / "layout.py"
    assert anchor in table.read_text()
    table.write_text(
        table.read_text().replace(anchor, anchor + ' "extra": "results/winner/extra.txt",')
    )
    rules = code / "rules" / "final.smk"
    line = '        model=path("select_winner", "model"),\n'
    assert line in rules.read_text()
    rules.write_text(
        rules.read_text().replace(line, line + '        extra=path("select_winner", "extra"),\n')
    )
    jobs = planned_jobs(*tiny_run, snakefile=snakefile)
    assert jobs.get("select_winner") == 1


def _readme_layout() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("## Layout", 1)[1].split("```", 2)[1]


def test_the_readmes_layout_section_matches_the_tree():
    """Every path the README's layout names exists, every tracked top-level folder and every
    module of the package is named there."""
    import subprocess

    block = _readme_layout()
    named = []
    for line in block.splitlines():
        if line and not line.startswith(" "):
            named += [p.strip() for p in re.split(r"\s{2,}", line, maxsplit=1)[0].split(",")]
    for pattern in named:
        if pattern != "runs/":  # not tracked: made by `mnist-mlp run`
            assert list(REPO.glob(pattern.rstrip("/"))), f"README layout names {pattern}"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    folders = {path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")}
    listed = {pattern.split("/")[0] for pattern in named}
    assert folders <= listed, f"not in the README's layout: {sorted(folders - listed)}"
    words = set(re.findall(r"\w+", block))
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    assert modules <= words, f"modules the README's layout omits: {sorted(modules - words)}"
    docs = {path.stem for path in (REPO / "docs").glob("*.md")}
    assert docs <= words, f"docs the README's layout omits: {sorted(docs - words)}"
