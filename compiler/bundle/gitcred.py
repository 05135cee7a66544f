"""A deploy-repo URL's password kept off disk and off the command line.

Git stores the URL it clones from in `.git/config` and shows every argument in `ps`; a token in
`https://user:token@host/…` would stay readable there for as long as the clone lives. So the URL
git sees has no password, and the password reaches git only through its process environment, by a
credential helper given as configuration in that environment (`GIT_CONFIG_COUNT`), with every
other helper reset first so none of them stores it (`credential.helper=store` would write it to
`~/.git-credentials`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

_USER, _PASSWORD = "TAKT_GIT_USERNAME", "TAKT_GIT_PASSWORD"
# git runs a helper that starts with "!" as a shell snippet, with the action ("get", "store",
# "erase") as its argument; only "get" answers, from the two variables of git's own environment
_HELPER = f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${_USER}" "${_PASSWORD}"; }}; f'


@dataclass(frozen=True)
class GitRemote:
    """What to hand git for one remote: `url` for its arguments, `env` for its environment."""

    url: str
    env: Mapping[str, str] = field(default_factory=dict)


def git_remote(url: str) -> GitRemote:
    """`url` without its password, and the environment that gives git the password when asked.

    Only http(s) URLs carry a password git would send; other URLs pass through unchanged."""
    try:
        parts = urlsplit(url)
        password = parts.password
        host = parts.hostname
    except ValueError:  # a malformed port or bracket: git reports it better than we could
        return GitRemote(url)
    if parts.scheme.lower() not in ("http", "https") or password is None or host is None:
        return GitRemote(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{hostport}" if user else hostport
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    env = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",  # an empty value resets the helpers of every config file
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": _HELPER,
        _USER: unquote(user),
        _PASSWORD: unquote(password),
    }
    return GitRemote(clean, env)
