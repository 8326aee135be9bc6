"""The dependency builder: recipe → prefix of static libraries, with a build cache.

One builder for every toolchain: for each dependency (in the recipe's ``depends`` order) it
fetches and extracts the source (:mod:`sources`), applies the recipe's patch set
(:mod:`patches`), applies the upstream search/replace edits the toolchain's plan keeps, runs
the plan's commands and copies what the plan installs into a staging prefix. The staging
prefix is what the cache stores; the shared prefix is assembled from cache entries.

Cache key = sha256 of everything that can change a dependency's output: the source hash (a
local override is hashed too), the patch hashes, the toolchain's identity (zig version,
target, nasm/cmake versions), its plan with paths abstracted (options, edits, commands), and
the cache keys of the dependencies it is built against. So a second run with nothing changed
compiles nothing, and changing one patch rebuilds that dependency and its dependents only.

Scheduling: a dependency starts as soon as the ones it depends on are done, so independent
ones (zlib, dav1d, aom) build side by side. ``jobs`` is the budget of compile processes for the
whole run, shared through a GNU make jobserver (:class:`JobServer`) that ninja reads; each
dependency builds against a private prefix holding exactly what it depends on (transitively),
so its output does not depend on which other builds happened to finish first, and the shared
prefix is written by the scheduling thread alone. Progress lines come from that thread, one
per event; every dependency keeps its own log. The first failure stops the other builds (their
process groups get SIGTERM, then SIGKILL) and is raised; so is Ctrl-C/SIGTERM.

The prefix gets ``manifest.json``: per dependency, its source (hash or local-override flag),
applied patches and their hashes, toolchain and version, options, artifacts with hashes, and
everything left out (features, edits, whole dependencies) with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.errors import BuildError, PatchError, UserError
from pillow_variants.recipe.model import Recipe, SourceEdit
from pillow_variants.sources import fetch
from pillow_variants.sources.patches import apply_patch_set, read_patch
from pillow_variants.toolchains.base import (
    JOBSERVER,
    BuildPaths,
    Command,
    Copy,
    DepPlan,
    Toolchain,
)

#: Bump when the builder itself changes what ends up in a staging prefix.
BUILDER_VERSION = "1"
MANIFEST = "manifest.json"
SCHEMA = "pillow-variants-deps-manifest/1"
REPORT_SCHEMA = "pillow-variants-deps-build/1"

#: Placeholder paths: plans are hashed with these so the cache key does not depend on where
#: the work directory or the prefix happens to be.
_KEY_PATHS = BuildPaths(source="@SOURCE", build="@BUILD", stage="@STAGE", prefix="@PREFIX")
#: The plan that keys the cache is made for this job count: parallelism changes no output, so a
#: ``-j2`` test run and a ``-j8`` build of the same inputs share their entries. (2: the count
#: the tests and 2-core CI always used, so entries made before keep their keys.)
_KEY_JOBS = 2


#: Seconds a stopped build's process group gets between SIGTERM and SIGKILL (ninja passes
#: SIGTERM on to its compiles' own process groups; SIGKILL would orphan them).
STOP_GRACE = 10.0


class BuildFailed(BuildError):
    """A dependency's build command failed; the message names the kept log (exit 3)."""


class _Stopped(Exception):
    """A build stopped because another one failed or the run was interrupted (not reported:
    the cause is)."""


class JobServer:
    """The run's budget of compile processes as a GNU make jobserver: the fifo form of make
    4.4, which ninja >= 1.13 reads from ``MAKEFLAGS`` when run without ``-j``.

    The budget is ``tokens`` processes in all. The scheduler takes one token for each build it
    starts (that build's first process, which ninja runs without asking) and returns it when
    the build ends; the rest wait in the fifo, where the running ninjas take one per further
    compile. So a build in its single-process configure step leaves the other cores to another
    build's compiles, a lone build compiles with the whole budget, and no more than ``tokens``
    processes run at once. (Fixed ``-j`` shares could not follow a build from its configure
    step to its compiles, nor give aom the whole budget once the others are done.)
    """

    def __init__(self, tokens: int) -> None:
        self._dir = tempfile.mkdtemp(prefix="pv-jobserver-")
        self.path = os.path.join(self._dir, "fifo")
        os.mkfifo(self.path, 0o600)
        # read-write: the fifo never sees end-of-file; non-blocking: a missing token is an
        # answer (try later), not a hang that Ctrl-C cannot break
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        os.write(self._fd, b"+" * tokens)
        self.makeflags = f" -j{tokens} --jobserver-auth=fifo:{self.path}"

    def acquire(self) -> bool:
        try:
            return len(os.read(self._fd, 1)) == 1
        except BlockingIOError:
            return False

    def release(self) -> None:
        os.write(self._fd, b"+")

    def close(self) -> None:
        os.close(self._fd)
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class DepResult:
    """What happened to one dependency in one run."""

    name: str
    status: str  # built | cached | not-built
    seconds: float = 0.0
    key: str = ""
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildReport:
    prefix: Path
    toolchain: dict[str, str]
    results: list[DepResult]

    @property
    def manifest_path(self) -> Path:
        return self.prefix / MANIFEST

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "prefix": str(self.prefix),
            "manifest": str(self.manifest_path),
            "toolchain": self.toolchain,
            "results": [
                {"name": r.name, "status": r.status, "seconds": round(r.seconds, 2), "key": r.key}
                for r in self.results
            ],
        }


def tree_sha256(root: Path) -> str:
    """A content hash of a directory (relative paths, file bytes, symlink targets), for local
    source overrides, so editing a local tree invalidates its cache entries."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(str(rel / name).encode() + b"\0")
            if p.is_symlink():
                h.update(b"L" + os.readlink(p).encode())
            else:
                with open(p, "rb") as fh:
                    h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def apply_edits(tree: Path, edits: list[SourceEdit]) -> None:
    """Upstream's search → replace edits; a search text that is not found is an error (as in
    build_prepare.py's assert), because a silently skipped edit changes the build."""
    for edit in edits:
        path = tree / edit.file
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise PatchError(f"upstream edit: cannot read {edit.file}: {exc.strerror}") from None
        if edit.search not in text:
            raise PatchError(
                f"upstream edit of {edit.file}: search text not found: {edit.search[:80]!r}"
            )
        path.write_text(
            text.replace(edit.search, edit.replace), encoding="utf-8", errors="surrogateescape"
        )


def closure(recipe: Recipe, only: list[str] | None) -> list[str]:
    """The dependencies to process: all, or ``only`` plus what they depend on (transitively),
    in build order. Dependencies of ``only`` are always processed — usually as cache hits — so
    the prefix never holds a library built against something absent from it."""
    order = recipe.build_order()
    if not only:
        return order
    unknown = [n for n in only if n not in recipe.dependencies]
    if unknown:
        raise UserError(
            f"--only {', '.join(unknown)}: no such dependency in {recipe.name} "
            f"(dependencies: {', '.join(order)})"
        )
    wanted: set[str] = set()
    todo = list(only)
    while todo:
        n = todo.pop()
        if n not in wanted:
            wanted.add(n)
            todo += recipe.dependencies[n].depends
    return [n for n in order if n in wanted]


def _copy_into(src: Path, dest: Path) -> list[Path]:
    """Copy a file or a directory's contents into directory ``dest``; return files written."""
    dest.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return [dest / p.relative_to(src) for p in src.rglob("*") if p.is_file()]
    shutil.copy2(src, dest / src.name)
    return [dest / src.name]


def run_copy(step: Copy) -> list[Path]:
    base = Path(step.base)
    matches = sorted(base.glob(step.pattern))
    if not matches:
        raise UserError(f"install: nothing matches {step.pattern} in {base}")
    if step.rename:
        if len(matches) != 1:
            raise UserError(f"install: {step.pattern} matches {len(matches)} files, rename needs 1")
        Path(step.dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(matches[0], Path(step.dest) / step.rename)
        return [Path(step.dest) / step.rename]
    out: list[Path] = []
    for m in matches:
        out += _copy_into(m, Path(step.dest))
    return out


def file_entry(path: Path, root: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return {
        "path": path.relative_to(root).as_posix(),
        "sha256": digest,
        "size": path.stat().st_size,
    }


class DepsBuilder:
    """Builds a recipe's dependencies into ``prefix`` with one toolchain."""

    def __init__(
        self,
        recipe: Recipe,
        toolchain: Toolchain,
        prefix: Path,
        *,
        cache_dir: Path | None = None,
        overrides: dict[str, Path] | None = None,
        allow_unpinned: bool = False,
        jobs: int = 2,
        builds: int | None = None,
        progress: Progress = progress_line,
    ) -> None:
        self.recipe = recipe
        self.toolchain = toolchain
        self.prefix = Path(prefix).resolve()
        self.cache_dir = Path(cache_dir or fetch.default_cache_dir()).resolve()
        self.overrides = overrides or {}
        self.allow_unpinned = allow_unpinned
        self.jobs = max(1, jobs)
        #: at most this many dependencies build at once (default: as many as the job budget
        #: allows; 1: one after another, each with ``-j jobs``)
        self.builds = max(1, builds if builds is not None else self.jobs)
        self.progress = progress
        fetch.check_overrides(recipe, self.overrides)
        self.keys: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self._previous: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._procs: set[subprocess.Popen[bytes]] = set()

    # -- paths -------------------------------------------------------------------------------

    @property
    def toolchain_dir(self) -> Path:
        return self.cache_dir / "toolchains" / self.toolchain.name

    def entry_dir(self, name: str, key: str) -> Path:
        return self.cache_dir / "deps" / f"{name}-{key[:20]}"

    def _say(self, text: str) -> None:
        self.progress(text)

    # -- the run -----------------------------------------------------------------------------

    def build(self, only: list[str] | None = None) -> BuildReport:
        self.toolchain.check_host()  # before anything is fetched or written
        names = closure(self.recipe, only)
        self.env = {**os.environ, **self.toolchain.setup(str(self.toolchain_dir))}
        identity = self.toolchain.identity()
        for sub in ("include", "lib", "licenses"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self._previous = self._read_manifest().get("dependencies", {})
        self._stop.clear()
        report = BuildReport(self.prefix, identity, self._schedule(names, identity))
        self._write_manifest(report)
        return report

    def concurrent(self) -> bool:
        """Whether this run builds independent dependencies side by side (needs a jobserver:
        a POSIX fifo and a toolchain whose build tool reads it)."""
        return (
            self.builds > 1
            and self.jobs > 1
            and hasattr(os, "mkfifo")
            and self.toolchain.jobserver()
        )

    def _schedule(self, names: list[str], identity: dict[str, str]) -> list[DepResult]:
        """Start each dependency once the ones it depends on are done, in build order while
        the budget allows; install finished ones into the prefix. Returns the results in build
        order, whatever order they finished in."""
        server = JobServer(self.jobs) if self.concurrent() else None
        jobs = JOBSERVER if server else self.jobs
        env = {**self.env, "MAKEFLAGS": server.makeflags} if server else self.env
        limit = self.builds if server else 1
        results: dict[str, DepResult] = {}
        missing: dict[str, str] = {}
        waiting = list(names)
        running: dict[Future[DepResult], tuple[str, str, float]] = {}
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="deps")
        try:
            while waiting or running:
                for name in list(waiting):
                    dep = self.recipe.dependencies[name]
                    if any(d not in results for d in dep.depends):
                        continue
                    label = f"[{names.index(name) + 1}/{len(names)}] {name} "
                    label += fetch.version_label(*self._versions(name))
                    absent = [d for d in dep.depends if d in missing]
                    if absent:
                        why = f"needs {', '.join(absent)}, which was not built"
                        missing[name] = why
                        results[name] = self._not_built(name, why, identity)
                        waiting.remove(name)
                        self._say(f"{label}: not built ({why})")
                        continue
                    plan = self.toolchain.plan(self.recipe, name, _KEY_PATHS, _KEY_JOBS)
                    if plan.unbuildable:
                        if not dep.built_inside:  # else the dependent's own build makes it
                            missing[name] = plan.unbuildable
                        results[name] = self._not_built(name, plan.unbuildable, identity, plan)
                        waiting.remove(name)
                        self._say(
                            f"{label}: not built with {self.toolchain.name} ({plan.unbuildable})"
                        )
                        continue
                    # build order is the priority: a later one never takes the slot first
                    if len(running) >= limit or (server and not server.acquire()):
                        break
                    self._say(f"{label}: ...")
                    future = pool.submit(self._build_one, name, plan, identity, jobs, env)
                    running[future] = (name, label, time.monotonic())
                    waiting.remove(name)
                if not running:  # all tokens briefly elsewhere (a ninja exiting): try again
                    time.sleep(0.05)
                    continue
                # short timeout while a ready build waits for a token; Ctrl-C is seen either way
                done, _ = wait(
                    running, timeout=0.2 if server and waiting else 1.0, return_when=FIRST_COMPLETED
                )
                for future in sorted(done, key=lambda f: names.index(running[f][0])):
                    name, label, start = running.pop(future)
                    if server:
                        server.release()
                    result = future.result()  # the first failure propagates from here
                    self._install(name, self.entry_dir(name, result.key) / "stage", result.entry)
                    result.seconds = time.monotonic() - start
                    result.entry["seconds"] = round(result.seconds, 2)
                    results[name] = result
                    self._say(f"{label}: {result.status} in {result.seconds:.1f}s")
        except BaseException:  # a failure, Ctrl-C or SIGTERM: stop the others, then raise
            self._stop_builds(list(running))
            raise
        finally:
            pool.shutdown(wait=True)
            if server:
                server.close()
        return [results[n] for n in names]

    def _stop_builds(self, futures: list[Future[DepResult]]) -> None:
        """Stop the running builds: no new command starts, every running one's process group
        gets SIGTERM, and SIGKILL after :data:`STOP_GRACE` seconds; wait for the threads."""
        with self._lock:
            self._stop.set()
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        wait(futures, timeout=STOP_GRACE)
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))  # none on Windows
        wait(futures)

    def _versions(self, name: str) -> tuple[str, str | None]:
        """(version built, the recipe's pin if different): an override's declared version."""
        return fetch.built_version(self.recipe.dependencies[name].version, self.overrides.get(name))

    @staticmethod
    def _version_fields(version: str, recipe_version: str | None) -> dict[str, str]:
        """Manifest fields: ``version`` built, and ``recipe_version`` only when it differs."""
        return {
            "version": version,
            **({"recipe_version": recipe_version} if recipe_version else {}),
        }

    def _not_built(
        self, name: str, reason: str, identity: dict[str, str], plan: DepPlan | None = None
    ) -> DepResult:
        dep = self.recipe.dependencies[name]
        entry = {
            "name": name,
            "project": dep.project,
            **self._version_fields(*self._versions(name)),
            "status": "not-built",
            "reason": reason,
            "in_wheel": dep.in_wheel,
            "toolchain": identity,
            "build_system": plan.build_system if plan else dep.build_system,
        }
        return DepResult(name, "not-built", entry=entry)

    def _key(
        self,
        name: str,
        plan: DepPlan,
        src_hash: str,
        patch_hashes: list[str],
        extra: dict[str, str],
    ) -> str:
        dep = self.recipe.dependencies[name]
        material = {
            "builder": BUILDER_VERSION,
            "dependency": {"name": name, "project": dep.project, "version": dep.version},
            "source": src_hash,
            "patches": patch_hashes,
            "extra_sources": extra,
            "toolchain": self.toolchain.identity(),
            "plan": self._plan_for_key(plan),
            # a dependency left to its dependent's own build has no key (and no output here)
            "depends": {d: self.keys[d] for d in dep.depends if d in self.keys},
        }
        blob = json.dumps(material, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def _plan_for_key(self, plan: DepPlan) -> Any:
        """The plan with the toolchain's tool locations masked (``<cmake>``): where cmake or
        ninja is installed does not change an object file, and keying it made every venv
        rebuild every dependency."""
        text = json.dumps(plan.to_dict(), sort_keys=True)
        # longest first: a path may contain another (a venv's bin/ holds several tools)
        for name, path in sorted(self.toolchain.tool_paths().items(), key=lambda i: -len(i[1])):
            text = text.replace(json.dumps(path)[1:-1], f"<{name}>")
        return json.loads(text)

    def _fetch(self, component: str) -> tuple[fetch.FetchedSource, str]:
        fetched = fetch.fetch_source(
            self.recipe,
            component,
            cache_dir=self.cache_dir,
            overrides=self.overrides,
            allow_unpinned=self.allow_unpinned,
        )
        digest = fetched.sha256 or tree_sha256(fetched.path)
        return fetched, digest

    def _build_one(
        self,
        name: str,
        key_plan: DepPlan,
        identity: dict[str, str],
        jobs: int,
        env: dict[str, str],
    ) -> DepResult:
        """Take ``name`` from the cache or build it into a new cache entry (a worker thread:
        the caller installs the entry's stage into the prefix)."""
        fetched, src_hash = self._fetch(name)
        patch_files = self.recipe.patch_files(name)
        patches = [read_patch(p) for p in patch_files]
        extra = {c: self._fetch(c) for c in key_plan.extra_sources}
        key = self._key(
            name,
            key_plan,
            src_hash,
            [p.sha256 for p in patches],
            {c: h for c, (_, h) in extra.items()},
        )
        self.keys[name] = key
        entry_dir = self.entry_dir(name, key)
        entry_file = entry_dir / "entry.json"
        if entry_file.is_file() and (entry_dir / "stage").is_dir():
            entry = json.loads(entry_file.read_text())
            entry["status"] = "cached"
            # Same bytes (the key hashes them), but named as this run found them: the path of
            # an override and the version its name declares.
            entry.pop("recipe_version", None)
            entry.update(self._version_fields(fetched.version, fetched.recipe_version))
            entry["source"] = {**fetched.manifest_entry(), "content_sha256": src_hash}
            return DepResult(name, "cached", key=key, entry=entry)

        work = self.cache_dir / "work" / f"{name}-{key[:20]}"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        log = work / "build.log"
        tree = fetch.extract_source(fetched, work / "src")
        applied = apply_patch_set(tree, patch_files)
        extra_paths = {}
        for comp, (fs, _) in extra.items():
            extra_tree = fetch.extract_source(fs, work / f"extra-{comp}")
            apply_patch_set(extra_tree, self.recipe.patch_files(comp))
            extra_paths[comp] = str(extra_tree)
        paths = BuildPaths(
            source=str(tree),
            build=str(work / "build"),
            stage=str(work / "stage"),
            prefix=str(self._private_prefix(name, work / "prefix")),
            extra_sources=extra_paths,
        )
        plan = self.toolchain.plan(self.recipe, name, paths, jobs)
        apply_edits(tree, plan.edits)
        Path(paths.build).mkdir()
        stage = Path(paths.stage)
        stage.mkdir()
        with open(log, "w") as fh:
            for step in plan.steps:
                if isinstance(step, Command):
                    self._run(name, step, fh, log, env)
                else:
                    fh.write(f"# copy {step.base}/{step.pattern} -> {step.dest}\n")
                    run_copy(step)
        entry = self._entry(name, plan, fetched, src_hash, applied, key, stage, identity)
        # Publish the cache entry atomically: a crash never leaves a half entry behind.
        entry_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".entry-", dir=entry_dir.parent))
        try:
            shutil.move(str(stage), tmp / "stage")
            shutil.copy2(log, tmp / "build.log")
            entry["log"] = str(entry_dir / "build.log")
            (tmp / "entry.json").write_text(json.dumps(entry, indent=2))
            if entry_dir.exists():
                shutil.rmtree(entry_dir)
            os.rename(tmp, entry_dir)
        finally:  # an error or a signal (SIGTERM is KeyboardInterrupt in the CLI) mid-way
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work)
        return DepResult(name, "built", key=key, entry=entry)

    def _private_prefix(self, name: str, prefix: Path) -> Path:
        """A prefix with the cache entries of exactly what ``name`` depends on (transitively),
        in build order: what the shared prefix held when builds ran one after another in
        build order, minus the unrelated ones -- which concurrent builds would add or not
        depending on timing, and which the cache key does not name."""
        needed: set[str] = set()
        todo = list(self.recipe.dependencies[name].depends)
        while todo:
            d = todo.pop()
            if d not in needed:
                needed.add(d)
                todo += self.recipe.dependencies[d].depends
        for sub in ("include", "lib", "licenses"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        for d in self.recipe.build_order():
            if d in needed and d in self.keys:  # not-built ones have no key and no files
                shutil.copytree(
                    self.entry_dir(d, self.keys[d]) / "stage", prefix, dirs_exist_ok=True
                )
        return prefix

    def _install(self, name: str, stage: Path, entry: dict[str, Any]) -> None:
        """Copy a staging prefix into the prefix, first removing files an earlier build of
        this dependency installed that the new one does not (no stale libraries)."""
        old = self._previous.get(name, {}).get("files", [])
        for rel in set(old) - set(entry.get("files", [])):
            (self.prefix / rel).unlink(missing_ok=True)
        shutil.copytree(stage, self.prefix, dirs_exist_ok=True)

    def _run(self, name: str, cmd: Command, fh: TextIO, log: Path, base: dict[str, str]) -> None:
        """Run one command of ``name``'s build in a process group of its own (session), so
        stopping the build stops everything it started."""
        fh.write(f"$ {cmd.display()}\n")
        fh.flush()
        env = dict(base)
        for var, value in cmd.env:
            env[var] = value + os.pathsep + env[var] if env.get(var) else value
        with self._lock:  # no command starts once _stop_builds has looked
            if self._stop.is_set():
                raise _Stopped(name)
            try:
                proc = subprocess.Popen(
                    cmd.argv,
                    cwd=cmd.cwd,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=os.name == "posix",
                )
            except OSError as exc:
                raise BuildFailed(
                    f"{name}: cannot run {cmd.argv[0]}: {exc.strerror}; log: {log}"
                ) from None
            self._procs.add(proc)
        try:
            returncode = proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)
        if self._stop.is_set():
            raise _Stopped(name)
        if returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
            self._say(f"--- last lines of {log} ---\n{tail}---")
            raise BuildFailed(
                f"{name}: {Path(cmd.argv[0]).name} {cmd.argv[1] if len(cmd.argv) > 1 else ''} "
                f"failed (exit {returncode}); full log kept at {log}"
            )

    def _entry(
        self,
        name: str,
        plan: DepPlan,
        fetched: fetch.FetchedSource,
        src_hash: str,
        applied: list[Any],
        key: str,
        stage: Path,
        identity: dict[str, str],
    ) -> dict[str, Any]:
        dep = self.recipe.dependencies[name]
        source = fetched.manifest_entry()
        source["content_sha256"] = src_hash
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        return {
            "name": name,
            "project": dep.project,
            **self._version_fields(fetched.version, fetched.recipe_version),
            "status": "built",
            "in_wheel": dep.in_wheel,
            "cache_key": key,
            "source": source,
            "local_override": fetched.local,
            "patches": [p.to_dict() for p in applied],
            "toolchain": identity,
            "build_system": plan.build_system,
            "options": plan.options,
            "upstream_edits": [
                {"file": e.file, "search": e.search, "replace": e.replace} for e in plan.edits
            ],
            "skipped_edits": [s.to_dict() for s in plan.skipped_edits],
            "skipped_features": [s.to_dict() for s in plan.skipped_features],
            "notes": plan.notes,
            "commands": plan.to_dict()["commands"],
            "depends": {d: self.keys[d] for d in dep.depends if d in self.keys},
            "artifacts": [
                file_entry(p, stage) for p in files if p.parts[len(stage.parts)] == "lib"
            ],
            "headers": sum(1 for p in files if p.parts[len(stage.parts)] == "include"),
            "files": [p.relative_to(stage).as_posix() for p in files],
            "licenses": [
                p.relative_to(stage).as_posix()
                for p in files
                if p.parts[len(stage.parts)] == "licenses"
            ],
        }

    def _read_manifest(self) -> dict[str, Any]:
        path = self.prefix / MANIFEST
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write_manifest(self, report: BuildReport) -> None:
        path = self.prefix / MANIFEST
        old = self._read_manifest()
        deps = old.get("dependencies", {}) if old.get("toolchain") == report.toolchain else {}
        for r in report.results:
            deps[r.name] = r.entry
        manifest = {
            "schema": SCHEMA,
            "recipe": self.recipe.name,
            "recipe_path": str(self.recipe.path),
            "toolchain": report.toolchain,
            "dependencies": {n: deps[n] for n in self.recipe.build_order() if n in deps},
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, path)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (POSIX), or to ``proc`` (Windows)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:
            proc.terminate()
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass  # already gone
