"""Fetch Java artifacts from Maven Central with Maven, into a cache that later runs reuse.

Puente runs a few Java programs (the Kafka broker, Kafka's performance tool, Apache Avro for the
cross-implementation test). Their jars come from Maven Central through ``mvn`` — no tarballs — and
land in ``<cache_dir>/<name>/libs``; a marker file records the coordinates so a change refetches.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from puente.errors import PuenteError


class MavenError(PuenteError):
    reason = "MAVEN_FETCH_FAILED"


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>puente.cache</groupId><artifactId>{name}</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def _dependency(coordinate: str) -> str:
    parts = coordinate.split(":")
    if len(parts) != 3:
        raise ValueError(f"expected group:artifact:version, got {coordinate!r}")
    group, artifact, version = (escape(p) for p in parts)
    return (
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>"
    )


def fetch_jars(
    name: str, coordinates: Sequence[str], cache_dir: Path, *, timeout_s: float = 900
) -> Path:
    """Resolve ``coordinates`` (``group:artifact:version``) and their runtime dependencies into
    ``cache_dir/name/libs`` and return that folder. A no-op when already fetched."""
    target = cache_dir.resolve() / name
    libs = target / "libs"
    marker = target / "coordinates.txt"
    wanted = "\n".join(coordinates) + "\n"
    if marker.is_file() and marker.read_text() == wanted and any(libs.glob("*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenError(
            "Maven (mvn) is not on PATH; it fetches Java jars from Maven Central",
            hint="install Maven 3 (Debian: apt-get install maven) and retry",
        )
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        pom = Path(tmp) / "pom.xml"
        deps = "\n".join(_dependency(c) for c in coordinates)
        pom.write_text(_POM.format(name=escape(name), deps=deps))
        staging = Path(tmp) / "libs"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise MavenError(
                f"Maven did not finish fetching {name} within {timeout_s:.0f} s",
                hint="check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml)",
            ) from exc
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise MavenError(
                f"Maven could not fetch {', '.join(coordinates)}: {' | '.join(tail)}",
                hint="check that Maven Central is reachable and the versions exist",
            )
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    marker.write_text(wanted)
    return libs


def classpath(libs: Path) -> str:
    """A Java class path of every jar in ``libs``."""
    return str(libs / "*")
