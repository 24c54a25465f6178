"""Run a rendered stack's manifests as local processes, the way a cluster would run them.

What the runner plays, and nothing else: the kubelet (each pod's command, args and env from its
manifest, Secrets resolved, `$(VAR)` expanded, its volumes as folders, its service-account token
mounted where the Kubernetes client reads it), cluster DNS (a generated /etc/hosts in the pod's own
mount namespace, so every URL in a manifest stays as written), kube-proxy (a loopback "cluster IP"
per Service forwarding to its pod, the userspace mode kube-proxy began with), the API server (HTTPS,
the rendered Roles enforced, for the drift job's kubernetes trigger) and `kubectl port-forward`.
Each pod gets its own loopback address, as pods get their own IP. The in-cluster PostgreSQL is the
machine's. Every command run is the manifest's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import celpy
import httpx
import psycopg

from pigeonhole_infra.policies import Manifest, pod_specs
from tests.infra.render import Rendered

TOKEN_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
VENV_BIN = Path(sys.executable).parent  # the image's PATH: this environment has what the image has


class TopologyError(RuntimeError):
    """A manifest cannot run or close the loop; the message says which and why."""


def _bindable(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


class Forwarder:
    """A TCP forwarder: kube-proxy for a Service, or `kubectl port-forward` for an operator."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.address = self.server.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


@dataclass
class PodRun:
    name: str
    ip: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Step:
    what: str
    seconds: float


@dataclass
class Topology:
    rendered: Rendered
    root: Path
    postgres: tuple[str, int]  # the machine's server, standing in for the in-cluster one
    transcript: list[Step] = field(default_factory=list)
    pods: list[PodRun] = field(default_factory=list)
    jobs_created: list[Manifest] = field(default_factory=list)
    _forwarders: list[Forwarder] = field(default_factory=list)
    _next_ip: int = 10

    def __post_init__(self) -> None:
        manifests = [r.manifest() for r in self.rendered.kubernetes()]
        self.namespace = str(self.rendered.outputs["namespace"])
        self.manifests = manifests
        self.secrets = {
            m["metadata"]["name"]: {**m.get("stringData", {})} for m in manifests if m["kind"] == "Secret"
        }
        self.claims: dict[str, Path] = {}
        self.service_ips: dict[str, str] = {}
        for index, service in enumerate(m for m in manifests if m["kind"] == "Service"):
            self.service_ips[service["metadata"]["name"]] = f"127.0.1.{10 + index}"
        self.hosts = self.root / "hosts"
        lines = ["127.0.0.1 localhost"]
        for name, ip in self.service_ips.items():
            lines.append(f"{ip} {name} {name}.{self.namespace} {name}.{self.namespace}.svc.cluster.local")
        self.hosts.write_text("\n".join(lines) + "\n")
        self.api = FakeApiServer(self, self._allocate_ip())

    # ---- objects -----------------------------------------------------------------------------
    def workload(self, kind: str, component: str) -> Manifest:
        found = [
            m
            for m in self.manifests
            if m["kind"] == kind
            and m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        if len(found) != 1:
            raise TopologyError(f"expected one {kind} for component {component!r}, found {len(found)}")
        return found[0]

    def named(self, kind: str, name: str) -> Manifest:
        return self.rendered.named(kind, name)

    # ---- time ----------------------------------------------------------------------------------
    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        print(f"[topology] {what} ...", flush=True)
        yield
        self.transcript.append(Step(what, time.monotonic() - started))
        print(f"[topology] {what}: done in {self.transcript[-1].seconds:.1f} s", flush=True)

    # ---- the kubelet ---------------------------------------------------------------------------
    def _allocate_ip(self) -> str:
        self._next_ip += 1
        return f"127.0.0.{self._next_ip}"

    def _secret_volume(self, volume: Manifest, folder: Path) -> Path:
        """A Secret's keys as files, as the kubelet projects them."""
        name = volume["secret"]["secretName"]
        if name not in self.secrets:
            raise TopologyError(f"volume {volume['name']}: no Secret {name}")
        path = folder / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        for key, value in self.secrets[name].items():
            (path / key).write_text(value)
        return path

    def _volumes(self, pod: Manifest, folder: Path) -> dict[str, Path]:
        """Mount path -> local folder: emptyDir per pod, a claim's folder shared by its pods."""
        by_volume: dict[str, Path] = {}
        for volume in pod.get("volumes", []):
            if "emptyDir" in volume:
                by_volume[volume["name"]] = folder / "volumes" / volume["name"]
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                by_volume[volume["name"]] = self.claims.setdefault(claim, self.root / "claims" / claim)
            elif "secret" in volume:
                by_volume[volume["name"]] = self._secret_volume(volume, folder)
            else:
                raise TopologyError(f"volume {volume['name']}: only emptyDir, PVCs and Secrets are run here")
        mounts = {}
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                mounts[mount["mountPath"]] = by_volume[mount["name"]]
        for path in mounts.values():
            path.mkdir(parents=True, exist_ok=True)
        return mounts

    @staticmethod
    def _localise(value: str, mounts: dict[str, Path], ip: str) -> str:
        """A path under a mount points into the mount's folder; a pod binds its own address."""
        key, sep, rest = value.partition("=") if value.startswith("--") else ("", "", value)
        for mount_path in sorted(mounts, key=len, reverse=True):
            if rest == mount_path or rest.startswith(mount_path.rstrip("/") + "/"):
                rest = str(mounts[mount_path]) + rest[len(mount_path) :]
                break
        return key + sep + rest.replace("0.0.0.0", ip)

    def _environment(self, container: Manifest, mounts: dict[str, Path], ip: str) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "KUBERNETES_SERVICE_HOST": self.api.ip,
            "KUBERNETES_SERVICE_PORT": str(self.api.port),
            "LANG": "C.UTF-8",
        }
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = self._localise(_expand(variable["value"], env), mounts, ip)
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                try:
                    env[variable["name"]] = self.secrets[ref["name"]][ref["key"]]
                except KeyError:
                    raise TopologyError(
                        f"{variable['name']}: no Secret {ref['name']} key {ref['key']}"
                    ) from None
        return env

    def start(self, name: str, pod: Manifest) -> PodRun:
        """Start the pod's one container as its manifest says, in a mount namespace of its own."""
        (container,) = pod["containers"]
        folder = self.root / "pods" / name
        folder.mkdir(parents=True, exist_ok=True)
        ip = self._allocate_ip()
        mounts = self._volumes(pod, folder)
        env = self._environment(container, mounts, ip)
        argv = [
            self._localise(_expand(part, env), mounts, ip)
            for part in [*container.get("command", []), *container.get("args", [])]
        ]
        if not argv:
            raise TopologyError(
                f"{name}: the container names no command; the image's default is not run here"
            )
        binds = [(self.hosts, Path("/etc/hosts"))]
        if pod.get("automountServiceAccountToken"):
            binds.append((self.api.token_folder(pod["serviceAccountName"], folder), TOKEN_DIR))
            TOKEN_DIR.mkdir(parents=True, exist_ok=True)
        mount = " && ".join(f"mount --bind {source} {target}" for source, target in binds)
        log = folder / "log"
        with log.open("wb") as out:
            namespace = ["unshare", "--mount", "--propagation", "private", "--"]
            process = subprocess.Popen(
                [*namespace, "sh", "-c", f'{mount} && exec "$@"', "pod", *argv],
                env=env,
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run = PodRun(name, ip, process, log)
        self.pods.append(run)
        return run

    def serve(self, kind: str, component: str) -> PodRun:
        """A Deployment's (or StatefulSet's) pod, and its Service's cluster IP forwarding to it."""
        manifest = self.workload(kind, component)
        (pod,) = pod_specs(manifest)
        run = self.start(manifest["metadata"]["name"], pod)
        for service in (m for m in self.manifests if m["kind"] == "Service"):
            if (
                service["spec"]["selector"].items()
                <= manifest["spec"]["template"]["metadata"]["labels"].items()
            ):
                for port in service["spec"]["ports"]:
                    target = _container_port(pod, port["targetPort"])
                    self._forward(
                        (self.service_ips[service["metadata"]["name"]], port["port"]), (run.ip, target)
                    )
        return run

    def stand_in_postgres(self, admin_url: str, created: list[str], machine_dsn: str) -> None:
        """The in-cluster PostgreSQL is the machine's, behind its Service: the stack's administrator, no
        superuser (CREATEROLE and CREATEDB, like RDS's master user), with its database; the databases
        the setup Job creates (``created``) are dropped first, so every run starts from nothing."""
        admin = urlparse(admin_url)
        user, database = admin.username or "", admin.path.lstrip("/")
        with psycopg.connect(machine_dsn, autocommit=True) as conn:
            for name in [database, *created]:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            conn.execute(
                f'{"ALTER" if exists else "CREATE"} ROLE "{user}" LOGIN CREATEROLE CREATEDB NOSUPERUSER'
            )
            conn.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
        service_name = (admin.hostname or "").split(".")[0]
        for port in self.named("Service", service_name)["spec"]["ports"]:
            self._forward((self.service_ips[service_name], port["port"]), self.postgres)

    def _forward(self, listen: tuple[str, int], target: tuple[str, int]) -> Forwarder:
        if not _bindable(*listen):
            raise TopologyError(f"{listen[0]}:{listen[1]} is taken on this machine")
        forwarder = Forwarder(listen, target)
        self._forwarders.append(forwarder)
        return forwarder

    def port_forward(self, service_name: str, port: int) -> str:
        """`kubectl port-forward svc/NAME PORT`: a localhost URL for an operator's command."""
        forwarder = self._forward(("127.0.0.1", 0), (self.service_ips[service_name], port))
        return f"http://127.0.0.1:{forwarder.address[1]}"

    def wait_ready(self, run: PodRun, pod: Manifest, timeout: float = 120) -> None:
        """Until the container's readiness probe passes (HTTP GET or TCP), or the pod dies."""
        (container,) = pod["containers"]
        probe = container.get("readinessProbe") or container.get("startupProbe") or {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run.process.poll() is not None:
                raise TopologyError(f"{run.name} exited with {run.process.returncode}:\n{run.tail()}")
            if _probe(probe, pod, run.ip):
                return
            time.sleep(0.5)
        raise TopologyError(f"{run.name} never passed its readiness probe:\n{run.tail()}")

    def run_job(self, job: Manifest, timeout: float = 600) -> tuple[int, str]:
        """A Job's pod to completion, once: its exit code and log."""
        run = self.start(job["metadata"]["name"], job["spec"]["template"]["spec"])
        try:
            code = run.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(run.process)
            raise TopologyError(f"{run.name} ran longer than {timeout:.0f} s:\n{run.tail()}") from None
        return code, run.log.read_text(errors="replace")

    def close(self) -> None:
        for run in self.pods:
            _stop(run.process)
        for forwarder in self._forwarders:
            forwarder.close()
        self.api.close()


def cel(expression: str, **variables: Any) -> bool:
    """Evaluate a CEL expression over JSON objects, as the API server evaluates admission policies."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    return bool(program.evaluate({name: celpy.json_to_cel(value) for name, value in variables.items()}))


def _expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion from the container's own environment."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


def _container_port(pod: Manifest, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for container in pod["containers"]:
        for declared in container.get("ports", []):
            if declared.get("name") == port:
                return int(declared["containerPort"])
    raise TopologyError(f"no container port named {port!r}")


def _probe(probe: Manifest, pod: Manifest, ip: str) -> bool:
    try:
        if "httpGet" in probe:
            port = _container_port(pod, probe["httpGet"]["port"])
            return httpx.get(f"http://{ip}:{port}{probe['httpGet']['path']}", timeout=2).status_code == 200
        if "tcpSocket" in probe:
            with socket.create_connection((ip, _container_port(pod, probe["tcpSocket"]["port"])), timeout=2):
                return True
    except (httpx.HTTPError, OSError):
        return False
    raise TopologyError(f"unsupported probe {probe}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


class FakeApiServer:
    """The Kubernetes API the drift job's trigger talks to: read a CronJob, create a Job. Requests are
    authorised by the rendered Roles and RoleBindings, as the real API server would."""

    def __init__(self, topology: Topology, ip: str) -> None:
        self.topology = topology
        self.ip = ip
        folder = topology.root / "api"
        folder.mkdir(parents=True, exist_ok=True)
        self.cert, key = folder / "ca.crt", folder / "tls.key"
        certificate = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kubernetes"]
        files = ["-keyout", str(key), "-out", str(self.cert)]
        subprocess.run(
            ["openssl", "req", *certificate, "-addext", f"subjectAltName=IP:{ip}", *files],
            check=True,
            capture_output=True,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        handler = type("Handler", (_ApiHandler,), {"api": self})
        self.server = ThreadingHTTPServer((ip, 0), handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token_folder(self, service_account: str, pod_folder: Path) -> Path:
        """What the kubelet projects into a pod that mounts its service account token."""
        folder = pod_folder / "serviceaccount"
        folder.mkdir(exist_ok=True)
        (folder / "token").write_text(f"serviceaccount:{service_account}")
        (folder / "namespace").write_text(self.topology.namespace)
        shutil.copy(self.cert, folder / "ca.crt")
        return folder

    @staticmethod
    def account_of(token: str) -> str | None:
        scheme, _, credential = token.partition(" ")
        if scheme.lower() != "bearer" or not credential.startswith("serviceaccount:"):
            return None
        return credential.removeprefix("serviceaccount:")

    def refusal(self, account: str, job: Manifest) -> str | None:
        """What the rendered ValidatingAdmissionPolicies say of ``account`` creating ``job``, their
        CEL evaluated as the API server does, each with its binding's parameter object."""
        request = {"userInfo": {"username": f"system:serviceaccount:{self.topology.namespace}:{account}"}}
        for binding in (
            m for m in self.topology.manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"
        ):
            policy = self.topology.named("ValidatingAdmissionPolicy", binding["spec"]["policyName"])
            if not all(
                cel(c["expression"], request=request) for c in policy["spec"].get("matchConditions", [])
            ):
                continue
            params = self.topology.named("CronJob", binding["spec"]["paramRef"]["name"])
            for validation in policy["spec"]["validations"]:
                if not cel(validation["expression"], object=job, params=params, request=request):
                    return str(validation["message"])
        return None

    def allowed(self, token: str, verb: str, resource: str, name: str | None) -> bool:
        account = self.account_of(token)
        if account is None:
            return False
        roles = {
            b["roleRef"]["name"]
            for b in self.topology.manifests
            if b["kind"] == "RoleBinding"
            and any(s["kind"] == "ServiceAccount" and s["name"] == account for s in b["subjects"])
        }
        for role in (
            m for m in self.topology.manifests if m["kind"] == "Role" and m["metadata"]["name"] in roles
        ):
            for rule in role["rules"]:
                names = rule.get("resourceNames")
                if (
                    "batch" in rule["apiGroups"]
                    and resource in rule["resources"]
                    and verb in rule["verbs"]
                    and (not names or name in names)
                ):
                    return True
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ApiHandler(BaseHTTPRequestHandler):
    api: FakeApiServer
    PATH = re.compile(
        r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/(?P<resource>cronjobs|jobs)(?:/(?P<name>[^/?]+))?"
    )

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[topology] api: {format % args}", flush=True)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, verb: str) -> tuple[str, str | None] | None:
        found = self.PATH.match(self.path)
        if found is None or found["ns"] != self.api.topology.namespace:
            self._answer(404, {"kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound"})
            return None
        resource, name = found["resource"], found["name"]
        if not self.api.allowed(self.headers.get("Authorization", ""), verb, resource, name):
            self._answer(403, {"kind": "Status", "status": "Failure", "code": 403, "reason": "Forbidden"})
            return None
        return resource, name

    def do_GET(self) -> None:
        route = self._route("get")
        if route is None:
            return
        resource, name = route
        if resource != "cronjobs" or name is None:
            self._answer(405, {"kind": "Status", "code": 405})
            return
        self._answer(200, self.api.topology.named("CronJob", name))

    def do_POST(self) -> None:
        route = self._route("create")
        if route is None:
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        refused = self.api.refusal(self.api.account_of(self.headers["Authorization"]) or "", body)
        if refused is not None:
            self._answer(422, {"kind": "Status", "status": "Failure", "code": 422, "message": refused})
            return
        self.api.topology.jobs_created.append(body)
        self._answer(201, body)
