"""Which files a run checks: gitignore, default excludes, settings globs, explicit paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import run_cli

CFG = 'from peft import LoraConfig\nc = LoraConfig(r=0)\n'


def checked(tmp_path, *args):
    run = run_cli(["check", "--output-format", "json", "--no-cache", *args], cwd=tmp_path)
    return sorted({d["path"] for d in run.json["diagnostics"]}), run.json["files_checked"]


def test_gitignore_default_excludes_and_negation(write, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(".gitignore", "outputs/\n*.gen.py\n!keep.gen.py\n/rootonly.py\n")
    for name in ("train.py", "outputs/run1/train.py", "a.gen.py", "keep.gen.py", "rootonly.py", "sub/rootonly.py",
                 ".venv/lib/site.py", "node_modules/x.py", "build/lib/y.py", "pkg.egg-info/z.py"):
        write(name, CFG)
    paths, count = checked(tmp_path, ".")
    assert paths == ["keep.gen.py", "sub/rootonly.py", "train.py"]
    assert count == 3


def test_gitignore_of_a_parent_directory_applies_when_checking_a_subdirectory(write, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(".gitignore", "generated/\n")
    write("proj/generated/x.py", CFG)
    write("proj/y.py", CFG)
    paths, _ = checked(tmp_path, "proj")
    assert paths == ["proj/y.py"]


def test_settings_exclude_and_explicit_files(write, tmp_path):
    write(".loralint.toml", 'exclude = ["legacy/**", "*_old.py"]\n')
    write("legacy/a.py", CFG)
    write("b_old.py", CFG)
    write("c.py", CFG)
    assert checked(tmp_path, ".")[0] == ["c.py"]
    # named on the command line: checked anyway, as ruff does ...
    assert checked(tmp_path, "legacy/a.py")[0] == ["legacy/a.py"]
    # ... unless --force-exclude (what the pre-commit hook passes)
    assert checked(tmp_path, "--force-exclude", "legacy/a.py", "c.py")[0] == ["c.py"]


def test_include_globs_and_no_gitignore(write, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(".gitignore", "ignored.py\n")
    write("ignored.py", CFG)
    write("train/x.py", CFG)
    write("other/y.py", CFG)
    write(".loralint.toml", 'include = ["train/**"]\n')
    assert checked(tmp_path, ".")[0] == ["train/x.py"]
    write(".loralint.toml", "respect-gitignore = false\n")
    assert "ignored.py" in checked(tmp_path, ".")[0]


def test_paths_are_reported_as_given(write, tmp_path):
    write("a/b/c.py", CFG)
    assert checked(tmp_path, "a")[0] == ["a/b/c.py"]
    assert checked(tmp_path, "./a/")[0] == ["./a/b/c.py"]
    assert checked(tmp_path / "a", ".")[0] == ["b/c.py"]
    absolute = str(tmp_path / "a")
    assert checked(tmp_path, absolute)[0] == [f"{absolute}/b/c.py"]


def test_gitignore_without_negation_agrees_with_last_rule_wins():
    """A .gitignore without `!` rules is looked up by segment and suffix sets: the verdict must be the
    one the ordered rules give (the last matching rule wins; dir-only rules skip files)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.discover import GitIgnore

    rule = st.lists(st.sampled_from(["a", "b", ".py", "*", "/", "x.py", "!"]), min_size=1, max_size=4).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(lines=st.lists(rule, min_size=1, max_size=6),
           rel=st.lists(st.sampled_from(["a", "b", "x.py", "a.py", "ab"]), min_size=1, max_size=3).map("/".join),
           is_dir=st.booleans())
    def check(lines, rel, is_dir):
        gitignore = GitIgnore(Path("/r"), lines)
        expected = None
        for glob, negated, dir_only in gitignore.rules:
            if not (dir_only and not is_dir) and glob.match(rel):
                expected = not negated
        assert gitignore.verdict(rel, is_dir) == expected
        # The walk's form: the folder's segments tested once for all the names in it.
        head, _, name = rel.rpartition("/")
        assert gitignore.verdict_in(gitignore.folder(f"{head}/" if head else ""), name, is_dir) == expected

    check()


def test_links_in_the_tree_a_file_twice_once_and_nested_gitignores(write, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write("a/real.py", CFG)
    write("a/deep/.gitignore", "skip.py\n")
    write("a/deep/skip.py", CFG)
    write("a/deep/kept.py", CFG)
    write("z/own.py", CFG)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "alias.py").symlink_to(tmp_path / "a" / "real.py")  # the same file: checked once, first name
    (tmp_path / "c").symlink_to(tmp_path / "z", target_is_directory=True)  # a folder link: never entered
    (tmp_path / "outside.py").symlink_to(tmp_path / "z" / "own.py")
    paths, count = checked(tmp_path, ".")
    assert paths == ["a/deep/kept.py", "a/real.py", "outside.py"]
    assert count == 3
    paths, _ = checked(tmp_path, "./b/", "a")  # named first, the link's name is the one reported
    assert paths == ["./b/alias.py", "a/deep/kept.py"]
