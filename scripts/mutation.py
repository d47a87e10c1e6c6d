"""``make mutation``: mutation testing of the reference modules with mutmut, one module at a time.

For each module listed in ``[tool.lensref-mutation.modules]`` of pyproject.toml (module -> its fast test files),
a scratch copy of the package, the tests and the quiz bank is made under ``_build/mutation/<module>/`` with
mutmut's settings from ``[tool.mutmut]`` plus that module and those tests; mutmut runs there (never in the
checkout, so nobody else's test run ever imports a mutant). Then the kill rate of each module is printed with
every surviving mutant, its one-line change, and the reason it is harmless if ``notes/mutation-equivalents.md``
lists it. Exit status 1 if a module is under the target or a survivor is not explained.

    python scripts/mutation.py [MODULE ...] [--jobs N] [--keep]
    python scripts/mutation.py --report-only [--save] [MODULE ...]

A full run of every module takes about four hours on two cores, so the verdicts are kept: after each module's
run its verdicts and function hashes go to ``notes/mutation-verdicts.json`` (committed). ``--keep`` starts from
them on a fresh clone and, like mutmut's own incremental mode, tests again only the mutants of functions that
changed, new mutants, and earlier survivors (against the tests as they are now). A run without ``--keep``
starts from nothing.

mutmut 3 leaves decorated functions alone (a decorator could have side effects when the function is copied);
``@torch.no_grad()`` has none, so functions carrying only that decorator are mutated like any other.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "_build" / "mutation"
EQUIVALENTS = ROOT / "notes" / "mutation-equivalents.md"
VERDICTS = ROOT / "notes" / "mutation-verdicts.json"  # the last verdicts, so that --keep works on a fresh clone
TARGET = 0.90
COPIED = ("lensref", "tests")  # and every folder of [tool.mutmut] also_copy (what the tests read)
DETECTED = ("killed", "timeout", "segfault")


def settings() -> tuple[dict, dict, dict]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tool = data["tool"]
    return tool["lensref-mutation"]["modules"], tool["mutmut"], tool["pytest"]["ini_options"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_table(name: str, table: dict) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())


def slug(module: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", module.removesuffix(".py")).strip("-")


def prepare(module: str, tests: list[str], mutmut: dict, pytest_options: dict, keep: bool) -> Path:
    """A scratch project for one module: copies of the package, tests and bank, and a pyproject for mutmut."""
    work = SCRATCH / slug(module)
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for stale in (work / "mutants" / "lensref").rglob("*.py"):  # mutmut copies sources only where none are
        stale.unlink()
    for name in [*COPIED, *mutmut.get("also_copy", [])]:
        target = work / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    meta = meta_path(work, module)
    kept = load_verdicts().get(module)
    if keep and kept and not meta.exists():  # a fresh clone: start from the verdicts the repository keeps
        meta.parent.mkdir(parents=True, exist_ok=True)
        empty: dict = {"type_check_error_by_key": {}, "durations_by_key": {}, "estimated_durations_by_key": {}}
        meta.write_text(json.dumps({**kept, **empty}), encoding="utf-8")
    config = dict(mutmut, only_mutate=[module], pytest_add_cli_args_test_selection=list(tests))
    (work / "pyproject.toml").write_text(
        toml_table("tool.mutmut", config) + "\n" + toml_table("tool.pytest.ini_options", pytest_options),
        encoding="utf-8",
    )
    return work


def allow_no_grad() -> None:
    """Let mutmut mutate functions whose only decorator is ``@torch.no_grad()`` (see the module docstring)."""
    import libcst as cst
    from mutmut.mutation import file_mutation

    def only_no_grad(node) -> bool:
        if not isinstance(node, cst.FunctionDef) or not node.decorators:
            return False
        code = cst.Module([]).code_for_node
        return all(code(d.decorator).replace(" ", "") == "torch.no_grad()" for d in node.decorators)

    visitor = next(
        c for c in vars(file_mutation).values() if isinstance(c, type) and hasattr(c, "_skip_node_and_children")
    )
    original = visitor._skip_node_and_children

    def skip(self, node):
        if only_no_grad(node):
            return original(self, node.with_changes(decorators=[]))
        return original(self, node)

    visitor._skip_node_and_children = skip


def mutmut_cli(argv: list[str]) -> None:
    """Run mutmut's own command line in this process (cwd = a scratch project)."""
    allow_no_grad()
    from mutmut.__main__ import cli

    cli(argv, prog_name="mutmut")


def mutmut(work: Path, *argv: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--mutmut", *argv],
        cwd=work,
        capture_output=capture,
        text=True,
        check=False,
    )


def meta_path(work: Path, module: str) -> Path:
    return work / "mutants" / f"{module}.meta"


def load_verdicts() -> dict:
    return json.loads(VERDICTS.read_text(encoding="utf-8")) if VERDICTS.exists() else {}


def save_verdicts(work: Path, module: str) -> None:
    """Keep a module's verdicts and function hashes in the repository (mutmut reruns what changed since)."""
    meta = json.loads(meta_path(work, module).read_text(encoding="utf-8"))
    verdicts = load_verdicts()
    verdicts[module] = {key: meta[key] for key in ("hash_by_function_name", "exit_code_by_key")}
    VERDICTS.write_text(json.dumps(verdicts, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def statuses(work: Path, module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = meta_path(work, module)
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    mutated = work / "mutants" / module
    if mutated.exists():  # a function that shrank leaves its old, higher-numbered mutants in the verdicts: drop them
        present = set(re.findall(r"""['"](x\S*?__mutmut_\d+)['"]""", mutated.read_text(encoding="utf-8")))
        codes = {name: code for name, code in codes.items() if name.rsplit(".", 1)[-1] in present}
    return {name: status_by_exit_code[code] for name, code in sorted(codes.items(), key=lambda kv: natural(kv[0]))}


def natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def change_of(work: Path, name: str) -> str:
    """The mutated line of a mutant, as ``old -> new`` (from ``mutmut show``)."""
    shown = mutmut(work, "show", name, capture=True).stdout.splitlines()
    old = [line[1:].strip() for line in shown if line.startswith("-") and not line.startswith("---")]
    new = [line[1:].strip() for line in shown if line.startswith("+") and not line.startswith("+++")]
    return f"{' / '.join(old)}  ->  {' / '.join(new)}" if old or new else "(no diff)"


def equivalents() -> dict[str, str]:
    """``{mutant name: reason}`` from the bullet list ``- `name`: reason`` in notes/mutation-equivalents.md."""
    if not EQUIVALENTS.exists():
        return {}
    found = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*[-*]\s+`([^`]+)`\s*:?\s*(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def report(module: str, found: dict[str, str], work: Path, reasons: dict[str, str], width: int = 0) -> tuple[bool, str]:
    """Print the kill rate and every survivor of one module; ``(target met, summary line)``."""
    unchecked = [name for name, status in found.items() if status == "not checked"]  # a run that was stopped
    checked = {name: status for name, status in found.items() if status != "not checked"}
    total = len(checked)
    detected = sum(status in DETECTED for status in checked.values())
    survivors = [name for name, status in checked.items() if status not in DETECTED]
    rate = detected / total if total else 0.0
    explained = [name for name in survivors if name in reasons]
    partial = f" ({len(unchecked)} more not tested yet: run again with KEEP=1)" if unchecked else ""
    print(
        f"\n{module}: {detected}/{total} mutants killed = {rate:.1%} (target {TARGET:.0%}){partial}; "
        f"{len(survivors)} survived, {len(explained)} of them listed as equivalent"
    )
    for name in survivors:
        why = reasons.get(name)
        print(f"  {name} [{checked[name]}]: {change_of(work, name)}")
        hint = f"NOT EXPLAINED: kill it with a test or list it in {EQUIVALENTS.relative_to(ROOT)}"
        print(f"      {'equivalent: ' + why if why else hint}")
    ok = total > 0 and not unchecked and rate >= TARGET and len(explained) == len(survivors)
    line = f"{module:<{width}}  {detected:>5}/{total:<5} {rate:6.1%}  survivors {len(survivors)} (equivalent {len(explained)})"
    return ok, line + (f"  PARTIAL: {len(unchecked)} not tested" if unchecked else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to test (default: every one in pyproject.toml)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument(
        "--keep", action="store_true", help="reuse the last run's kills; test new mutants and earlier survivors"
    )
    parser.add_argument("--report-only", action="store_true", help="print the last run's results, run nothing")
    parser.add_argument("--save", action="store_true", help="with --report-only: keep those verdicts in notes/")
    args = parser.parse_args(argv)
    modules, mutmut_settings, pytest_options = settings()
    chosen = args.modules or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        print(f"error: not in [tool.lensref-mutation.modules]: {', '.join(unknown)}", file=sys.stderr)
        return 2
    reasons = equivalents()
    summary, all_ok = [], True
    for module in chosen:
        work = SCRATCH / slug(module)
        if not args.report_only:
            work = prepare(module, modules[module], mutmut_settings, pytest_options, args.keep)
            print(f"== {module}: mutmut in {work.relative_to(ROOT)} with {', '.join(modules[module])}", flush=True)
            earlier = statuses(work, module)  # what the last run decided (empty without --keep)
            if args.keep:
                # new tests may cover functions they did not before: collect which tests run what afresh
                (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
            mutmut(work, "run", "--max-children", str(args.jobs))
            # earlier survivors against the tests as they are now (those tested just now need no second run), and
            # earlier timeouts: a run cut off while the machine was busy is no proof that the tests caught it
            survivors = [
                name for name, status in earlier.items() if status not in ("killed", "segfault", "not checked")
            ]
            now = statuses(work, module)
            survivors = [name for name in survivors if now.get(name) == earlier[name]]  # not decided again just now
            if survivors:
                mutmut(work, "run", "--max-children", str(args.jobs), *survivors)
            if meta_path(work, module).exists():
                save_verdicts(work, module)
        if args.report_only and args.save and meta_path(work, module).exists():
            save_verdicts(work, module)
        ok, line = report(module, statuses(work, module), work, reasons, max(map(len, chosen)))
        all_ok &= ok
        summary.append(line)
    print(f"\nmutation testing (mutmut, fast tests only); equivalents explained in {EQUIVALENTS.relative_to(ROOT)}")
    print("\n".join(summary))
    return 0 if all_ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mutmut"]:
        mutmut_cli(sys.argv[2:])
    else:
        sys.exit(main())
