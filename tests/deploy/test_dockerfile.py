"""The Dockerfile, parsed with Docker's own parser (the ``dockerfile`` package wraps BuildKit's): it is
multi-stage, its final stage runs as a user other than root and has a HEALTHCHECK on /healthz, and
every base image is pinned to a full version. It cannot be built here (no container engine)."""

from __future__ import annotations

import re
from collections.abc import Callable

import dockerfile
import pytest

from tests.deploy import artefacts as a

Commands = tuple[dockerfile.Command, ...]
# name:1.2.3... or name@sha256:...; "3.11", "slim" or "latest" move under you.
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$")


def stages(commands: Commands) -> list[list[dockerfile.Command]]:
    out: list[list[dockerfile.Command]] = []
    for command in commands:
        if command.cmd == "FROM":
            out.append([])
        if out:
            out[-1].append(command)
    return out


def stage_name(stage: list[dockerfile.Command]) -> str | None:
    value = stage[0].value
    return value[2] if len(value) == 3 and value[1].upper() == "AS" else None


def multi_stage(commands: Commands) -> list[str]:
    all_stages = stages(commands)
    if len(all_stages) < 2:
        return ["one stage only"]
    earlier = {stage_name(s) for s in all_stages[:-1]} - {None}
    copied = {f.removeprefix("--from=") for c in all_stages[-1] for f in c.flags if f.startswith("--from=")}
    if not copied & earlier:
        return ["the final stage copies nothing from an earlier stage"]
    return []


def non_root_user(commands: Commands) -> list[str]:
    users = [c.value[0] for c in stages(commands)[-1] if c.cmd == "USER"]
    if not users:
        return ["no USER in the final stage: it runs as root"]
    user = users[-1].partition(":")[0]
    if user in ("root", "0"):
        return [f"USER {users[-1]} is root"]
    return []


def healthcheck(commands: Commands) -> list[str]:
    checks = [c for c in stages(commands)[-1] if c.cmd == "HEALTHCHECK"]
    if not checks or checks[-1].value[0].upper() != "CMD":
        return ["no HEALTHCHECK CMD in the final stage"]
    if not any("/healthz" in part for part in checks[-1].value):
        return ["the HEALTHCHECK does not ask /healthz"]
    return []


def pinned_bases(commands: Commands) -> list[str]:
    names = {stage_name(s) for s in stages(commands)}
    images = [c.value[0] for c in commands if c.cmd == "FROM"]
    return [
        f"FROM {image} is not pinned" for image in images if image not in names and not PINNED.match(image)
    ]


CHECKS: list[Callable[[Commands], list[str]]] = [multi_stage, non_root_user, healthcheck, pinned_bases]


def problems(text: str) -> list[str]:
    commands = dockerfile.parse_string(text)
    return [problem for check in CHECKS for problem in check(commands)]


TEXT = a.DOCKERFILE.read_text()


def test_the_dockerfile_passes_every_check():
    assert problems(TEXT) == []


def without_build_stage(text: str) -> str:
    runtime = text[text.index("FROM python:3.11.14-slim-bookworm AS runtime") :]
    return runtime.replace("COPY --from=build ", "COPY ")


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"{old!r} is not in the Dockerfile any more: update this test"
        return text.replace(old, new)

    return edit


HEALTHCHECK = re.compile(r"^HEALTHCHECK .*\\\n.*\n", re.MULTILINE)


@pytest.mark.parametrize(
    "edit,problem",
    [
        (without_build_stage, "one stage only"),
        (replace("COPY --from=build ", "COPY "), "the final stage copies nothing from an earlier stage"),
        (replace("USER 10001:10001\n", ""), "no USER in the final stage: it runs as root"),
        (replace("USER 10001:10001", "USER root"), "USER root is root"),
        (replace("USER 10001:10001", "USER 0:0"), "USER 0:0 is root"),
        (lambda text: HEALTHCHECK.sub("HEALTHCHECK NONE\n", text), "no HEALTHCHECK CMD in the final stage"),
        (replace("/healthz", "/"), "the HEALTHCHECK does not ask /healthz"),
        (
            replace("python:3.11.14-slim-bookworm AS runtime", "python:3.11-slim AS runtime"),
            "FROM python:3.11-slim is not pinned",
        ),
        (replace("python:3.11.14-slim-bookworm AS build", "python AS build"), "FROM python is not pinned"),
        (
            replace("python:3.11.14-slim-bookworm AS build", "python:latest AS build"),
            "FROM python:latest is not pinned",
        ),
    ],
    ids=[
        "single-stage",
        "no-copy-from",
        "no-user",
        "root",
        "uid-0",
        "no-healthcheck",
        "not-healthz",
        "minor-tag",
        "no-tag",
        "latest",
    ],
)
def test_a_broken_copy_fails_its_check(edit, problem):
    assert problems(edit(TEXT)) == [problem]
