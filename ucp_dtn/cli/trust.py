"""``ucp trust init|issue|revoke|use|show``: a mesh authority and one trust file per device.

* ``init [--authority DIR] [--name NAME]`` makes the mesh authority (its key and certificate,
  readable by the owner only) in ``DIR`` (default ``$UCP_AUTHORITY``, else ``./mesh-authority``);
* ``issue node dtn://hub/`` / ``issue client NAME [--admin]`` writes one trust file for one
  device (``-o FILE``, default ``NAME.trust.pem``; mode 0600): its key, its certificate naming
  its node ID (a client's is ``dtn://NAME/`` unless NAME is a node ID) and the authority's
  certificate. Copy it to that device only;
* ``revoke NODE-ID|SERIAL`` revokes a device's certificate and writes the authority's new
  revocation list (``--out FILE`` copies it; ``--socket`` hands it to a running daemon, which
  applies it and floods it through the mesh as bundles); ``publish --socket`` hands the
  latest list again;
* ``use FILE`` makes the client home (``--home``) a member of the mesh: the file is copied to
  ``<home>/trust.pem`` (0600) and every later command uses it (``--trust FILE`` does the same for
  one command);
* ``show [FILE]`` prints what a trust file holds (default: the home's).

Only ``revoke --socket`` and ``publish`` talk to a daemon.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .command import EXIT_USAGE, CommandError, Subcommand

__all__ = ["AUTHORITY_ENV", "TRUST"]

AUTHORITY_ENV = "UCP_AUTHORITY"
"""Environment variable naming the authority directory."""


def _authority_dir(args: argparse.Namespace) -> Path:
    if args.authority is not None:
        return Path(args.authority).expanduser()
    return Path(os.environ.get(AUTHORITY_ENV) or "mesh-authority")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make a mesh authority")
    issue = actions.add_parser("issue", help="write one device's trust file")
    revoke = actions.add_parser("revoke", help="revoke a device's certificate")
    publish = actions.add_parser(
        "publish", help="hand the latest revocation list to a node again (it floods it)"
    )
    publish.add_argument("--socket", type=Path, required=True, help="the node's API socket")
    for sub in (init, issue, revoke, publish):
        sub.add_argument(
            "--authority",
            metavar="DIR",
            help=f"the authority's directory (default: ${AUTHORITY_ENV} or ./mesh-authority)",
        )
    init.add_argument("--name", default="ucp mesh authority", help="the authority's name")
    init.add_argument(
        "--days", type=_days, default=3650, help="validity of the authority (default 3650)"
    )
    issue.add_argument("kind", choices=("node", "client"), help="a daemon or a client")
    issue.add_argument("name", help="the node ID (dtn://hub/), or for a client a name")
    issue.add_argument("--admin", action="store_true", help="a client that may change anyone's")
    issue.add_argument("--days", type=_days, default=365, help="validity (default 365 days)")
    issue.add_argument("-o", "--output", type=Path, help="where to write it (NAME.trust.pem)")
    revoke.add_argument("who", help="a node ID, or a certificate's serial number in hex")
    revoke.add_argument("--out", type=Path, help="also write the revocation list (DER) here")
    revoke.add_argument(
        "--socket",
        type=Path,
        help="hand the revocation list to the daemon of this application socket (a node of "
        "the mesh): it applies it and floods it through the mesh as bundles",
    )
    use = actions.add_parser("use", help="make the client home a member of the mesh")
    use.add_argument("file", type=Path, help="the client's trust file")
    use.add_argument("--home", type=Path, default=argparse.SUPPRESS, help="the client home")
    show = actions.add_parser("show", help="print what a trust file holds")
    show.add_argument("file", type=Path, nargs="?", help="a trust file (default: the home's)")
    show.add_argument("--home", type=Path, default=argparse.SUPPRESS, help="the client home")


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 36500:
        raise argparse.ArgumentTypeError(f"days must be a whole number from 1 to 36500: {text!r}")
    return int(text)


def _init(args: argparse.Namespace) -> int:
    from ucp_dtn.trust import MeshAuthority

    directory = _authority_dir(args)
    authority = MeshAuthority.create(directory, args.name, days=args.days)
    print(f"mesh authority {authority.certificate.subject.rfc4514_string()} in {directory}")
    print(f"  {directory / 'ca.key'}: its private key -- keep it safe, offline if you can")
    print("next: ucp trust issue node dtn://hub/   (one trust file per device)")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from ucp_dtn.trust import MeshAuthority, MeshRole

    if args.kind == "node":
        if args.admin:
            raise CommandError("--admin is for clients", EXIT_USAGE)
        node_id, role = args.name, MeshRole.NODE
    else:
        node_id = args.name if "://" in args.name or ":" in args.name else f"dtn://{args.name}/"
        role = MeshRole.ADMIN if args.admin else MeshRole.CLIENT
    output = args.output or Path(_file_name(node_id) + ".trust.pem")
    if output.exists():
        raise CommandError(f"{output} exists (not replaced)")
    authority = MeshAuthority.open(_authority_dir(args))
    trust = authority.issue(node_id, role, days=args.days)
    trust.write(output)
    facts = trust.facts
    print(f"{output}: {role} {node_id}, serial {facts.serial:x}, until {facts.not_after:%Y-%m-%d}")
    if role is MeshRole.NODE:
        print(f"on that device: ucp-bpnode -n {node_id} --trust {output.name} ...")
    else:
        print(f"on that device: ucp trust use {output.name}")
    return 0


def _file_name(node_id: str) -> str:
    name = node_id.split("://", 1)[-1].strip("/").replace("/", "-").replace(":", "-")
    return name or "device"


def _revoke(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from ucp_dtn.trust import MeshAuthority

    authority = MeshAuthority.open(_authority_dir(args))
    revoked = authority.revoke(args.who)
    crl = authority.revocation_list()
    for entry in revoked:
        print(f"revoked {entry.role} {entry.node_id} (serial {entry.serial:x})")
    der = crl.public_bytes(serialization.Encoding.DER)
    if args.out is not None:
        args.out.write_bytes(der)
        print(f"{args.out}: the revocation list")
    if args.socket is not None:
        node_id = _publish(args.socket, der)
        print(f"handed to {node_id}: it floods the revocation through the mesh")
    else:
        print(
            "publish it: ucp trust revoke ... --socket NODE/bpnode.sock on a node of the mesh "
            "(or ucp trust publish --socket ... later)"
        )
    return 0


def _publish(socket: Path, der: bytes) -> str:
    """Send a revocation list to the daemon at ``socket``'s revocations endpoint."""
    import trio

    from ucp_dtn.appapi import AppApiClient, AppApiError
    from ucp_dtn.trust.revocation import LIFETIME_S, revocations_endpoint

    async def send() -> str:
        async with AppApiClient.connect(socket) as client:
            info = await client.node_info()
            await client.send(revocations_endpoint(info.node_id), der, lifetime_s=LIFETIME_S)
            return info.node_id

    try:
        return trio.run(send)
    except (AppApiError, OSError) as exc:
        raise CommandError(f"cannot hand the list to the daemon at {socket}: {exc}") from None


def _publish_action(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from ucp_dtn.trust import MeshAuthority

    authority = MeshAuthority.open(_authority_dir(args))
    der = authority.revocation_list().public_bytes(serialization.Encoding.DER)
    node_id = _publish(args.socket, der)
    print(f"handed to {node_id}: it floods the revocation list through the mesh")
    return 0


def _home(args: argparse.Namespace) -> Path:
    from ucp_dtn.client.settings import ClientSettings

    home = getattr(args, "home", None)
    return ClientSettings(home=Path(home) if home is not None else None).home_path


def _use(args: argparse.Namespace) -> int:
    from ucp_dtn.client.home import TRUST_FILE
    from ucp_dtn.trust import TrustFile

    trust = TrustFile.read(args.file)
    if not trust.facts.is_client:
        raise CommandError(
            f"{args.file} is a {trust.facts.role} certificate's: a client needs a client's "
            "(ucp trust issue client NAME)",
            EXIT_USAGE,
        )
    home = _home(args)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    destination = home / TRUST_FILE
    TrustFile(trust.key, trust.certificate, trust.authority).write(destination, replace=True)
    print(f"the client home {home} is now {trust.node_id} in the mesh of ", end="")
    print(trust.authority.subject.rfc4514_string())
    print("(restart a running client agent to use it: ucp agent stop)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ucp_dtn.client.home import TRUST_FILE
    from ucp_dtn.trust import TrustFile

    path = args.file if args.file is not None else _home(args) / TRUST_FILE
    trust = TrustFile.read(path, private=False)
    facts = trust.facts
    print(f"node ID:   {facts.node_id}")
    print(f"role:      {facts.role}")
    print(f"serial:    {facts.serial:x}")
    since = trust.certificate.not_valid_before_utc
    print(f"valid:     {since:%Y-%m-%d} to {facts.not_after:%Y-%m-%d}")
    print(f"authority: {trust.authority.subject.rfc4514_string()}")
    return 0


_ACTIONS = {
    "init": _init,
    "issue": _issue,
    "revoke": _revoke,
    "publish": _publish_action,
    "use": _use,
    "show": _show,
}


def _run(args: argparse.Namespace) -> int:
    from ucp_dtn.trust import TrustError

    try:
        return _ACTIONS[args.trust_command](args)
    except TrustError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise CommandError(f"{exc.strerror or exc}{where}") from None


TRUST = Subcommand(
    "trust",
    "a trusted mesh: make an authority, issue trust files, revoke, use one (docs/security.md)",
    _add_arguments,
    _run,
    client=False,
)
