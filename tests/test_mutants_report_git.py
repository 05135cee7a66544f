"""agent/report_git.py on real Git, bare repositories in tmp_path over file://: the local chain of
`refs/takt/status/<device>` (identity, times, parents), its re-chaining once it reaches twice `keep`, the forced
push of this device's ref and nothing else, and how a Git failure is worded. A chain of `keep` = 3 instead
of 32 keeps each test to a few dozen git calls."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.report_git import KEEP_REPORTS, STATUS_REPO, ReportPushError, _git, commit_report, push_report
from compiler.bundle.report import REPORT_FILE, STATUS_REF_PREFIX
from compiler.fleet.reports import MAX_HISTORY

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
REF = f"{STATUS_REF_PREFIX}dev-1"


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, check=True, text=True)
    return out.stdout.strip()


def chain(repo: Path, ref: str = REF) -> list[str]:
    """Each commit of the ref, newest first: `<subject>|<author>|<author email>|<author time>|<committer time>`."""
    return git(repo, "log", "--first-parent", "--format=%s|%an|%ae|%at|%ct", ref).splitlines()


def commits(state: Path, n: int, keep: int = 3, start: int = 1) -> list[str]:
    return [commit_report(state, "dev-1", f"report {i}".encode(), i, T0 + timedelta(minutes=i), keep=keep)
            for i in range(start, start + n)]  # fmt: skip


def test_the_default_chain_is_what_the_fleet_reader_reads_back() -> None:
    assert KEEP_REPORTS == MAX_HISTORY


def test_the_first_report_makes_the_repository_even_where_no_directory_is_yet(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    c = commit_report(state, "dev-1", b"envelope one", 1, T0)
    repo = state / STATUS_REPO
    assert git(repo, "rev-parse", "--is-bare-repository") == "true"
    assert git(repo, "rev-parse", REF) == c
    assert git(repo, "ls-tree", "--name-only", c) == REPORT_FILE
    assert git(repo, "show", f"{c}:{REPORT_FILE}") == "envelope one"
    assert git(repo, "rev-list", "--parents", "-n", "1", c) == c  # a root
    stamp = int(T0.timestamp())
    assert chain(repo) == [f"status dev-1 sequence 1|takt-agent dev-1|dev-1@takt.invalid|{stamp}|{stamp}"]
    who = "takt-agent dev-1|dev-1@takt.invalid|2030-01-01 12:00:00 +0000"
    assert git(repo, "log", "-1", "--format=%cn|%ce|%ai", c) == who


def test_an_empty_repository_directory_is_made_a_repository(tmp_path: Path) -> None:
    (tmp_path / STATUS_REPO).mkdir()
    c = commit_report(tmp_path, "dev-1", b"x", 1, T0)
    assert git(tmp_path / STATUS_REPO, "rev-parse", REF) == c


def test_each_report_is_a_child_of_the_last_and_the_repository_is_kept(tmp_path: Path) -> None:
    first, second = commits(tmp_path, 2)
    repo = tmp_path / STATUS_REPO
    assert git(repo, "rev-parse", f"{second}^") == first
    assert git(repo, "show", f"{REF}:{REPORT_FILE}") == "report 2"
    assert git(repo, "show", f"{first}:{REPORT_FILE}") == "report 1"


def test_the_chain_grows_to_twice_keep_then_restarts_with_the_newest_keep(tmp_path: Path) -> None:
    repo = tmp_path / STATUS_REPO
    lengths = []
    for i in range(1, 10):
        commits(tmp_path, 1, keep=3, start=i)
        lengths.append(len(chain(repo)))
    assert lengths == [1, 2, 3, 4, 5, 6, 3, 4, 5]
    got = chain(repo)
    assert [line.split("|")[0] for line in got] == [f"status dev-1 sequence {i}" for i in (9, 8, 7, 6, 5)]
    for line, i in zip(got, (9, 8, 7, 6, 5), strict=True):  # re-chained commits keep their own times
        stamp = int((T0 + timedelta(minutes=i)).timestamp())
        assert line.endswith(f"|takt-agent dev-1|dev-1@takt.invalid|{stamp}|{stamp}")
    assert [git(repo, "show", f"{REF}~{n}:{REPORT_FILE}") for n in range(5)] == [f"report {i}" for i in (9, 8, 7, 6, 5)]
    root = git(repo, "rev-list", "--max-parents=0", REF)
    assert git(repo, "show", f"{root}:{REPORT_FILE}") == "report 5"


def test_a_chain_of_keep_one_restarts_from_the_new_report_alone(tmp_path: Path) -> None:
    repo = tmp_path / STATUS_REPO
    commits(tmp_path, 2, keep=1)
    assert len(chain(repo)) == 2
    commits(tmp_path, 1, keep=1, start=3)
    assert [line.split("|")[0] for line in chain(repo)] == ["status dev-1 sequence 3"]


def test_the_push_sends_this_device_s_ref_only_and_forces_a_re_chained_one(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    state = tmp_path / "state"
    commits(state, 6, keep=3)
    local = state / STATUS_REPO
    git(local, "update-ref", f"{STATUS_REF_PREFIX}other", git(local, "rev-parse", REF))
    git(local, "update-ref", "refs/heads/main", git(local, "rev-parse", REF))
    push_report(state, f"file://{remote}", "dev-1", 30.0)
    assert git(remote, "for-each-ref", "--format=%(refname)") == REF
    assert len(chain(remote)) == 6
    commits(state, 1, keep=3, start=7)  # re-chained: not a fast-forward of what the remote has
    push_report(state, f"file://{remote}", "dev-1", 30.0)
    assert git(remote, "rev-parse", REF) == git(local, "rev-parse", REF)
    assert len(chain(remote)) == 3


def test_a_push_the_server_refuses_names_git_s_cause(tmp_path: Path) -> None:
    commits(tmp_path, 1)
    with pytest.raises(ReportPushError) as err:
        push_report(tmp_path, f"file://{tmp_path}/missing.git", "dev-1", 30.0)
    text = str(err.value)
    assert text.startswith("git push: ") and "\n" not in text
    assert "missing.git' does not appear to be a git repository" in text  # the cause (compiler.bundle.gitmessage)
    assert "repository exists" not in text  # not git's closing advice


def test_a_long_git_error_is_cut_to_300_characters(tmp_path: Path) -> None:
    commits(tmp_path, 1)
    with pytest.raises(ReportPushError) as err:
        _git(tmp_path / STATUS_REPO, "cat-file", "-t", "x" * 500)
    assert str(err.value) == "git cat-file: " + ("Not a valid object name " + "x" * 500)[:299] + "…"


def test_a_git_failure_without_words_says_git_failed(tmp_path: Path) -> None:
    commits(tmp_path, 1)
    with pytest.raises(ReportPushError, match=r"^git rev-parse: git failed$"):
        _git(tmp_path / STATUS_REPO, "rev-parse", "--verify", "-q", "refs/takt/status/nobody")


def test_git_missing_or_too_slow_is_a_push_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commits(tmp_path, 1)
    with pytest.raises(ReportPushError, match=r"^git push failed: .*timed out"):
        push_report(tmp_path, f"file://{tmp_path}/missing.git", "dev-1", 0.0001)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(ReportPushError, match=r"^git hash-object failed: "):
        commits(tmp_path, 1, start=2)


def test_git_runs_without_prompting_and_in_the_c_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    spy = bin_dir / "git"
    spy.write_text('#!/bin/sh\necho "$GIT_TERMINAL_PROMPT $LC_ALL $GIT_AUTHOR_NAME $*"\n')
    spy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}")
    got = _git(tmp_path, "status", env={"GIT_AUTHOR_NAME": "me"})
    assert got == f"0 C me -c gc.auto=0 -c protocol.version=2 --git-dir={tmp_path} status"


def test_a_git_step_is_bounded_by_60_seconds_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real = subprocess.run

    def spy(*args: object, **kw: object) -> object:
        seen.append(kw["timeout"])  # type: ignore[arg-type]
        return real(*args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", spy)
    commit_report(tmp_path, "dev-1", b"x", 1, T0)
    assert seen and set(seen) == {60.0}
    seen.clear()
    with pytest.raises(ReportPushError):
        push_report(tmp_path, f"file://{tmp_path}/missing.git", "dev-1", 7.5)
    assert seen == [7.5]
