"""aptsrc: deb-src planning from real-shaped apt configurations, enabling it in a scratch
/etc/apt, and orig-tarball downloads through stand-in apt-get/apt-cache programs (the real
download is tested in test_debian_sources.py and test_pysdk_network.py)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

import pytest

from pillow_variants.build import pysdk
from pillow_variants.errors import SourceError
from pillow_variants.sources import aptsrc

DEBIAN_822 = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    return etc


def test_every_pinned_suite_is_enabled_by_default() -> None:
    suites = {p.headers.suite for p in pysdk.load_pins().values() if p.headers}
    assert suites <= set(aptsrc.SUITES)


def test_plan_copies_the_debian_entry_not_security() -> None:
    plan = aptsrc.plan_deb_src(
        [(Path("/etc/apt/sources.list.d/debian.sources"), DEBIAN_822)],
        ["bookworm", "trixie", "bookworm"],
    )
    assert plan is not None
    assert "Types: deb-src\n" in plan
    assert "URIs: http://mirror.example/debian\n" in plan
    assert "Suites: bookworm trixie\n" in plan
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" in plan


def test_plan_lists_only_suites_not_yet_covered() -> None:
    src = DEBIAN_822 + "\nTypes: deb-src\nURIs: http://mirror.example/debian\nSuites: sid\n"
    entries = [(Path("x.sources"), src)]
    assert aptsrc.plan_deb_src(entries, ["sid"]) is None
    plan = aptsrc.plan_deb_src(entries, ["trixie", "sid"])
    assert plan is not None and "Suites: trixie\n" in plan
    one_line = (
        "deb http://m.example/debian bookworm main\ndeb-src http://m.example/debian sid main\n"
    )
    assert aptsrc.plan_deb_src([(Path("sources.list"), one_line)], ["sid"]) is None


def test_plan_ignores_disabled_stanzas_security_and_our_own_file() -> None:
    disabled = "Enabled: no\nTypes: deb-src\nURIs: http://mirror.example/debian\nSuites: sid\n"
    security = "Types: deb-src\nURIs: http://mirror.example/debian-security\nSuites: sid\n"
    ours = "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: sid\n"
    entries = [
        (Path("debian.sources"), DEBIAN_822),
        (Path("off.sources"), disabled),
        (Path("sec.sources"), security),
        (Path(aptsrc.OUR_FILE), ours),
    ]
    plan = aptsrc.plan_deb_src(entries, ["sid"])
    assert plan is not None and "Suites: sid\n" in plan


def test_plan_from_one_line_format_keeps_signed_by() -> None:
    text = "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    plan = aptsrc.plan_deb_src([(Path("/etc/apt/sources.list"), text)], ["trixie"])
    assert plan is not None
    assert "URIs: http://m.example/debian\n" in plan and "Signed-By: /k.gpg\n" in plan


def test_plan_without_debian_entry() -> None:
    with pytest.raises(SourceError, match="no Debian apt source"):
        aptsrc.plan_deb_src(
            [(Path("x.list"), "deb http://other.example/ubuntu jammy main\n")], ["sid"]
        )


def test_ensure_writes_once_and_reports_what_it_did(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list.d/debian.sources": DEBIAN_822})
    said: list[str] = []
    written = aptsrc.ensure_deb_src(
        ["trixie", "sid"], etc_apt=etc, update=False, progress=said.append
    )
    assert written == etc / "sources.list.d" / aptsrc.OUR_FILE
    assert "Suites: trixie sid\n" in written.read_text()
    assert said == [f"enabled deb-src in {written}"]
    assert aptsrc.ensure_deb_src(["trixie", "sid"], etc_apt=etc, update=False) is None
    # a wider request rewrites our file instead of adding another one
    aptsrc.ensure_deb_src(aptsrc.SUITES, etc_apt=etc, update=False)
    assert "Suites: bookworm trixie sid\n" in written.read_text()
    assert sorted(p.name for p in (etc / "sources.list.d").iterdir()) == [
        "debian.sources",
        aptsrc.OUR_FILE,
    ]


def test_ensure_that_cannot_write_says_what_to_write(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list": "deb http://m.example/debian bookworm main\n"})
    (etc / "sources.list.d" / aptsrc.OUR_FILE).mkdir()  # unwritable even for root
    with pytest.raises(SourceError, match="cannot enable deb-src") as info:
        aptsrc.ensure_deb_src(["sid"], etc_apt=etc, update=False)
    assert "Types: deb-src\nURIs: http://m.example/debian\nSuites: sid\n" in str(info.value)


def test_main_dry_run_prints_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    etc = _etc(tmp_path, {"sources.list.d/debian.sources": DEBIAN_822})
    assert aptsrc.main(["--etc-apt", str(etc), "--dry-run", "--suite", "sid"]) == 0
    assert "Suites: sid\n" in capsys.readouterr().out
    assert not (etc / "sources.list.d" / aptsrc.OUR_FILE).exists()
    empty = _etc(tmp_path / "e", {})
    assert aptsrc.main(["--etc-apt", str(empty), "--no-update"]) == 2
    assert "no Debian apt source" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("version", "upstream"),
    [("1:3.1.3-4", "3.1.3"), ("2.14.3+dfsg-1", "2.14.3+dfsg"), ("1.6.0-0.1", "1.6.0"), ("3", "3")],
)
def test_upstream_part(version: str, upstream: str) -> None:
    assert aptsrc.upstream_part(version) == upstream


# --------------------------------------------------------------------------------------------
# fetch_orig through stand-ins for apt-get and apt-cache (Python scripts on PATH)

FAKE_APT = r"""#!{python}
import os, sys
from pathlib import Path
log = Path(os.environ["FAKE_APT_LOG"])
with log.open("a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\n")
name = Path(sys.argv[0]).name
if name == "apt-cache":
    for v in os.environ["FAKE_APT_OFFERED"].split():
        print(f"Package: pkg\nVersion: {{v}}\n")
elif sys.argv[1] == "source":
    version = sys.argv[-1].split("=", 1)[1]
    if os.environ.get("FAKE_APT_404"):  # offered by the index, absent from the mirror
        print("W: Download is performed unsandboxed as root", file=sys.stderr)
        print("E: Failed to fetch http://mirror.example/pkg_1.0.orig.tar.gz  404  Not Found",
              file=sys.stderr)
        print("E: Failed to fetch some archives.", file=sys.stderr)
        sys.exit(100)
    if version in os.environ["FAKE_APT_OFFERED"].split():
        Path(os.environ["FAKE_APT_FILE"]).write_bytes(os.environ["FAKE_APT_BYTES"].encode())
    else:
        print(f"E: Can not find version '{{version}}' of package 'pkg'", file=sys.stderr)
        sys.exit(100)
"""


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("apt-get", "apt-cache"):
        exe = bin_dir / name
        exe.write_text(FAKE_APT.format(python=sys.executable))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("FAKE_APT_FILE", "pkg_1.0.orig.tar.gz")
    monkeypatch.setenv("FAKE_APT_BYTES", "the orig tarball")
    covered = DEBIAN_822 + "\nTypes: deb-src\nURIs: http://mirror.example/debian\n"
    covered += "Suites: " + " ".join(aptsrc.SUITES) + "\n"
    return _etc(tmp_path, {"sources.list.d/debian.sources": covered})


SHA = hashlib.sha256(b"the orig tarball").hexdigest()


def test_fetch_orig_falls_back_to_a_newer_revision_of_the_same_upstream(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APT_OFFERED", "1.0-2 2.0-1")  # the pinned 1.0-1 was superseded
    dest = tmp_path / "dl"
    said: list[str] = []
    got = aptsrc.fetch_orig(
        "pkg", "1.0-1", "pkg_1.0.orig.tar.gz", SHA, dest, etc_apt=fake_apt, progress=said.append
    )
    assert got == dest / "pkg_1.0.orig.tar.gz" and got.read_bytes() == b"the orig tarball"
    log = (tmp_path / "log").read_text()
    assert "source --download-only --tar-only pkg=1.0-1\n" in log
    assert "source --download-only --tar-only pkg=1.0-2\n" in log
    assert "pkg=2.0-1" not in log  # another upstream version is never tried
    assert said[-1] == "apt-get source --download-only --tar-only pkg=1.0-2"
    assert list(dest.iterdir()) == [got]  # no temporary directories left
    (tmp_path / "log").unlink()
    assert aptsrc.fetch_orig("pkg", "1.0-1", got.name, SHA, dest, etc_apt=fake_apt) == got
    assert not (tmp_path / "log").exists()  # verified cache hit: apt not run


def test_fetch_orig_refuses_a_tarball_that_does_not_match_the_pin(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APT_OFFERED", "1.0-1")
    monkeypatch.setenv("FAKE_APT_BYTES", "something else")
    dest = tmp_path / "dl"
    with pytest.raises(SourceError, match="does not match the pinned"):
        aptsrc.fetch_orig("pkg", "1.0-1", "pkg_1.0.orig.tar.gz", SHA, dest, etc_apt=fake_apt)
    assert list(dest.iterdir()) == []


def test_fetch_orig_names_what_it_tried(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APT_OFFERED", "")
    with pytest.raises(SourceError) as info:
        aptsrc.fetch_orig(
            "pkg", "1.0-1", "pkg_1.0.orig.tar.gz", SHA, tmp_path / "dl", etc_apt=fake_apt
        )
    msg = str(info.value)
    assert "cannot fetch pkg_1.0.orig.tar.gz from Debian source package pkg" in msg
    assert "tried 1.0-1" in msg and "apt offers no version" in msg
    assert "Can not find version '1.0-1'" in msg


def test_fetch_orig_names_the_missing_file_when_the_mirror_lacks_it(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index offers the version, the mirror answers 404: that line is the reason (the
    build's skip row repeats it), not apt's closing "Failed to fetch some archives"."""
    monkeypatch.setenv("FAKE_APT_OFFERED", "1.0-1")
    monkeypatch.setenv("FAKE_APT_404", "1")
    with pytest.raises(SourceError) as info:
        aptsrc.fetch_orig(
            "pkg", "1.0-1", "pkg_1.0.orig.tar.gz", SHA, tmp_path / "dl", etc_apt=fake_apt
        )
    assert "pkg_1.0.orig.tar.gz  404  Not Found" in str(info.value)
