"""``ucp-bpnode`` settings: flags, the TOML file, flags over the file, one-line errors."""

from __future__ import annotations

import ast
import dataclasses
import json
import tomllib
from pathlib import Path

import pytest
import trustme

from ucp_dtn.agent import DEFAULT_STORE_QUOTA
from ucp_dtn.daemon import (
    SETTINGS,
    DaemonSettings,
    SettingsError,
    build_parser,
    default_node_id,
    load_settings,
    main,
    parse_route,
)
from ucp_dtn.settings import FlagStyle, Setting, flag_of


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_flags_build_the_node_config(tmp_path: Path) -> None:
    settings = load_settings(
        [
            "-n",
            "dtn://a/",
            "-W",
            str(tmp_path / "a"),
            "-l",
            "127.0.0.1:0",
            "-l",
            "[::1]:4557",
            "-s",
            "tcp://10.0.0.2:4556",
            "-s",
            "10.0.0.3",
            "-r",
            "dtn://c/*=dtn://b/",
            "--discovery",
            "--discovery-interface",
            "127.0.0.1",
            "--discovery-service-type",
            "_test-1._tcp",
            "--roles",
            "broker,executor",
            "--quota",
            "64MiB",
            "--socket",
            str(tmp_path / "s.sock"),
            "--lifetime",
            "1h15s",
            "--custody-retransmit",
            "2s",
            "--route-interval",
            "500ms",
            "--keepalive",
            "10s",
            "--reconnect-max",
            "2m",
            "-vv",
        ]
    )
    node = settings.node
    assert node.node_id == "dtn://a/"
    assert node.workdir == tmp_path / "a"
    assert node.listen == (("127.0.0.1", 0), ("::1", 4557))
    assert node.static_peers == (("10.0.0.2", 4556), ("10.0.0.3", 4556))
    assert node.static_routes == (("dtn://c/*", "dtn://b/"),)
    assert node.discovery is True
    assert node.discovery_interfaces == ("127.0.0.1",)
    assert node.discovery_service_type == "_test-1._tcp.local."
    assert node.roles == ("broker", "executor")
    assert node.store_quota_bytes == 64 * 1024 * 1024
    assert node.default_lifetime_s == 3615.0
    assert node.custody_retransmit_s == 2.0
    assert node.route_advert_interval_s == 0.5
    assert node.keepalive_s == 10
    assert node.reconnect_max_s == 120.0
    assert node.tls is None
    assert settings.socket_path == tmp_path / "s.sock"
    assert settings.verbosity == 2


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(["--in-memory"])
    assert settings == DaemonSettings(
        node=settings.node, socket_path=None, verbosity=0, config_file=None
    )
    assert settings.node.workdir is None
    assert settings.node.node_id == default_node_id()
    assert settings.node.listen == (("127.0.0.1", 4556),)
    assert settings.node.store_quota_bytes == DEFAULT_STORE_QUOTA
    assert settings.node.discovery is False


def test_the_file_is_read_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
node_id = "ipn:7.0"
workdir = "state"
listen = ["0.0.0.0:4556"]
static_peers = ["tcp://peer:4000"]
routes = ["ipn:9.*=ipn:8.0"]
discovery = true
discovery_interfaces = ["::1"]
discovery_service_type = "_other._tcp.local."
roles = ["datastore"]
quota = "1MiB"
socket = "run/api.sock"
lifetime = 60
custody_retransmit = "1m"
route_interval = 2.5
keepalive = "0s"
verbose = 1
""",
    )
    settings = load_settings(["-c", str(config)])
    node = settings.node
    assert node.node_id == "ipn:7.0"
    assert node.workdir == tmp_path / "state"
    assert node.listen == (("0.0.0.0", 4556),)
    assert node.static_peers == (("peer", 4000),)
    assert node.static_routes == (("ipn:9.*", "ipn:8.0"),)
    assert node.discovery is True
    assert node.roles == ("datastore",)
    assert node.discovery_interfaces == ("::1",)
    assert node.discovery_service_type == "_other._tcp.local."
    assert node.store_quota_bytes == 1024 * 1024
    assert node.default_lifetime_s == 60.0
    assert node.custody_retransmit_s == 60.0
    assert node.route_advert_interval_s == 2.5
    assert node.keepalive_s == 0
    assert settings.socket_path == tmp_path / "run" / "api.sock"
    assert settings.verbosity == 1
    assert settings.config_file == config


def test_routes_may_be_a_table(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'in_memory = true\n[routes]\n"dtn://c/*" = "dtn://b/"\n"*" = "dtn://gw/"\n',
    )
    node = load_settings(["-c", str(config)]).node
    assert node.static_routes == (("dtn://c/*", "dtn://b/"), ("*", "dtn://gw/"))


def test_flags_override_the_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'node_id = "dtn://file/"\nworkdir = "w"\nlisten = ["127.0.0.1:1"]\n'
        'static_peers = ["tcp://x:1"]\ndiscovery = true\nquota = "1MiB"\n',
    )
    settings = load_settings(
        [
            "-c",
            str(config),
            "-n",
            "dtn://flag/",
            "--in-memory",
            "-l",
            "127.0.0.1:2",
            "--no-discovery",
        ]
    )
    node = settings.node
    assert node.node_id == "dtn://flag/"
    assert node.workdir is None  # --in-memory replaces the file's workdir
    assert node.listen == (("127.0.0.1", 2),)  # a repeatable flag replaces the whole list
    assert node.static_peers == (("x", 1),)  # not given on the command line: the file's
    assert node.discovery is False
    assert node.store_quota_bytes == 1024 * 1024


def test_a_workdir_flag_replaces_in_memory_from_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "in_memory = true\n")
    node = load_settings(["-c", str(config), "-W", str(tmp_path / "w")]).node
    assert node.workdir == tmp_path / "w"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('lisen = ["x"]\nin_memory = true\n', r"node\.toml: unknown key 'lisen' \(known: node_id"),
        ("in_memory = true\n[tls]\ncertificate = 'x'\n", r"unknown key 'tls\.certificate'"),
        ("in_memory = true\nlisten = 4556\n", r"node\.toml: listen: must be an array of strings"),
        ("in_memory = true\nlisten = [4556]\n", r"listen: must be an array of strings"),
        ('in_memory = "yes"\n', r"in_memory: must be a boolean, got a string"),
        ("in_memory = true\nquota = 1.5\n", r"quota: .*whole number of bytes"),
        ('in_memory = true\nquota = "lots"\n', r"quota: .*lots"),
        ('in_memory = true\nlifetime = "soon"\n', r"lifetime: .*soon"),
        ("in_memory = true\nlifetime = true\n", r"lifetime: must be a duration .* got a boolean"),
        ('in_memory = true\nroutes = ["dtn://c/*"]\n', r"routes: route 'dtn://c/\*': write"),
        ("in_memory = true\nroutes = 3\n", r"routes: must be an array"),
        ('in_memory = true\nroles = ["cook"]\n', r"roles: unknown role 'cook'"),
        ('in_memory = true\nstatic_peers = ["udp://x:1"]\n', r"only tcp:// peers"),
        ("in_memory = true\ntls = 1\n", r"tls: must be a table"),
        ('in_memory = true\ndiscovery_interfaces = ["eth0"]\n', r"'eth0' is not an IP address"),
        (
            'in_memory = true\ndiscovery_service_type = "_x._udp"\n',
            r"discovery_service_type: .*RFC 6335",
        ),
        ('in_memory = true\nverbose = "loud"\n', r"verbose: must be an integer"),
        ("in_memory = [\n", r"node\.toml: not valid TOML"),
        ('workdir = "w"\nin_memory = true\n', r"workdir and in_memory = true exclude"),
        ('node_id = "dtn://a/x"\nin_memory = true\n', r"is not a node ID"),
        ('in_memory = true\nroutes = ["dtn://c/*=dtn://b/x"]\n', r"is not a node ID"),
    ],
)
def test_file_errors_name_the_key_and_the_file(tmp_path: Path, text: str, match: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(SettingsError, match=match):
        load_settings(["-c", str(config)])


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.toml: cannot read"):
        load_settings(["-c", str(tmp_path / "nope.toml")])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ([], r"give a work directory \(-W DIR\) or --in-memory"),
        (["--in-memory", "-W", "x"], "exclude each other"),
        (["--in-memory", "-l", "nohost:port"], "bad port"),
        (["--in-memory", "-l", "127.0.0.1:70000"], "bad port"),
        (["--in-memory", "-r", "dtn://c/*"], r"write PATTERN=NEXTHOP"),
        (["--in-memory", "-r", "bad=dtn://b/"], r"invalid route pattern 'bad'"),
        (["--in-memory", "-r", "x*=dtn://b/"], r"route pattern 'x\*' must start with dtn: or ipn:"),
        (["--in-memory", "-s", "http://x:1"], r"only tcp://"),
        (["--in-memory", "-s", "tcp://x:1/dtn://b/"], r"write tcp://HOST:PORT"),
        (["--in-memory", "--quota", "many"], "many"),
        (["--in-memory", "--quota", "0"], r"argument --quota: must be from 1 to 1024TiB, got 0"),
        (["--in-memory", "--lifetime", "forever"], "forever"),
        (["--in-memory", "--keepalive", "1.5s"], r"argument --keepalive: must be whole seconds"),
        (["--in-memory", "--roles", "broker,chef"], r"unknown role 'chef'"),
        (
            ["--in-memory", "--capability", "cpu_cores=2.5"],
            r"^capability cpu_cores: must be an integer, got 2\.5$",
        ),
        (["--in-memory", "--discovery-interface", "lo"], r"'lo' is not an IP address"),
        (["--in-memory", "--discovery-service-type", "dtn"], r"service type"),
        (["--in-memory", "-n", "not a node"], r"invalid node ID"),
        (["--in-memory", "--bogus"], r"unrecognized arguments: --bogus"),
        (["--in-memory", "--require-tls"], r"TLS: "),
        (
            ["--in-memory", "--tls-cert", "c.pem"],
            r"TLS: a certificate \(--tls-cert\) needs its private key",
        ),
    ],
)
def test_flag_errors(argv: list[str], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        load_settings(argv)


def test_tls_files_are_loaded(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("a.example")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "node.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = write(
        tmp_path,
        'in_memory = true\n[tls]\ncert = "node.pem"\nkey = "node.pem"\nca = "ca.pem"\n'
        "require = true\n",
    )
    tls = load_settings(["-c", str(config)]).node.tls
    assert tls is not None
    assert tls.require
    assert tls.server_context is not None and tls.client_context is not None


def test_tls_flags_are_the_file_keys(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("a.example").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "node.pem")
    )
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pem, ca_pem = str(tmp_path / "node.pem"), str(tmp_path / "ca.pem")
    flags = ["--tls-cert", pem, "--tls-key", pem, "--tls-ca", ca_pem, "--tls-require"]
    tls = load_settings(["--in-memory", *flags]).node.tls
    assert tls is not None and tls.require and tls.server_context is not None
    without_ca = load_settings(["--in-memory", "--tls-cert", pem, "--tls-key", pem]).node.tls
    assert without_ca is not None and not without_ca.require


def test_unreadable_tls_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(SettingsError, match=r"TLS: cannot read the CA file .*missing\.pem"):
        load_settings(["--in-memory", "--tls-ca", str(tmp_path / "missing.pem")])
    with pytest.raises(SettingsError, match=r"TLS: bad certificate or key"):
        load_settings(
            [
                "--in-memory",
                "--tls-cert",
                str(tmp_path / "bad.pem"),
                "--tls-key",
                str(tmp_path / "bad.pem"),
            ]
        )


def test_parse_route_splits_at_the_last_equals_sign() -> None:
    assert parse_route(" dtn://c/a=b* = dtn://b/ ") == ("dtn://c/a=b*", "dtn://b/")


def test_default_node_id_is_a_valid_node_id() -> None:
    settings = load_settings(["--in-memory"])
    assert settings.node.node_eid.is_node_id


def test_main_reports_bad_flags_on_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--in-memory", "--quota", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ucp-bpnode: error: ")
    assert err.count("\n") == 1
    config = write(tmp_path, "wat = 1\n")
    assert main(["-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"ucp-bpnode: error: {config}: unknown key 'wat' (known: " + err.split("(known: ")[1]
    )


# -- the table: every flag and key comes from it, every entry is used ---------------------------

ROOT = Path(__file__).resolve().parents[2]

# Settings the generic test below cannot give alone: the work directory and in_memory decide
# the baseline, the file is how the file layer is given, TLS needs files (tested above).
NOT_ALONE = {
    "workdir",
    "in_memory",
    "config",
    "trust",
    "tls.cert",
    "tls.key",
    "tls.ca",
    "tls.require",
    "security",
}


def test_every_flag_comes_from_the_table() -> None:
    parser = build_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    flags -= {"-h", "--help"}
    expected = set()
    for setting in SETTINGS:
        names = [setting.name, *setting.old_names]
        expected |= {flag_of(name) for name in names} | ({setting.short} - {None})
        if setting.kind.flag is FlagStyle.SWITCH:
            expected |= {"--no-" + flag_of(name)[2:] for name in names}
    assert flags == expected


def test_every_file_key_comes_from_the_table(tmp_path: Path) -> None:
    config = write(tmp_path, "wat = 1\n")
    with pytest.raises(SettingsError) as error:
        load_settings(["-c", str(config)])
    known = str(error.value).split("(known: ")[1].rstrip(")").split(", ")
    assert known == SETTINGS.file_keys()
    assert known == list(
        dict.fromkeys(setting.name.split(".")[0] for setting in SETTINGS if setting.in_file)
    )


def _toml_value(example: str) -> str:
    try:
        tomllib.loads(f"x = {example}")
    except tomllib.TOMLDecodeError:
        return json.dumps(example)  # a TOML basic string
    return example


def _given_both_ways(setting: Setting, tmp_path: Path) -> tuple[list[str], str]:
    """The setting's example as flags and as a TOML line."""
    assert setting.example is not None, f"give {setting.name!r} an example (docs, this test)"
    example = setting.example
    if setting.kind.file_relative:
        example = str(tmp_path / example)
    flag = setting.short or flag_of(setting.name)
    if setting.kind.flag is FlagStyle.COUNT:
        return [flag] * int(example), f"{setting.name} = {example}"
    if setting.many:
        return [flag, example], f"{setting.name} = [{_toml_value(example)}]"
    return [flag, example], f"{setting.name} = {_toml_value(example)}"


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.name not in NOT_ALONE], ids=lambda s: s.name
)
def test_every_setting_is_used_and_flag_and_file_agree(setting: Setting, tmp_path: Path) -> None:
    base = ["--in-memory"]
    baseline = load_settings(base)
    if setting.kind.flag is FlagStyle.SWITCH:
        flags, line = [flag_of(setting.name)], f"{setting.name} = true"
        if load_settings([*base, *flags]) == baseline:  # on by default: turn it off
            flags, line = (
                [flag_of(setting.name).replace("--", "--no-", 1)],
                f"{setting.name} = false",
            )
    else:
        flags, line = _given_both_ways(setting, tmp_path)
    by_flag = load_settings([*base, *flags])
    assert by_flag != baseline, f"{setting.name} changes nothing: is it fed to anything?"
    config = write(tmp_path, line + "\n")
    by_file = load_settings([*base, "-c", str(config)])
    assert dataclasses.replace(by_file, config_file=None) == by_flag


def test_the_settings_not_given_alone_are_used(tmp_path: Path) -> None:
    assert load_settings(["-W", str(tmp_path)]).node.workdir == tmp_path
    assert load_settings(["--in-memory"]).node.workdir is None
    config = write(tmp_path, "in_memory = true\n")
    assert load_settings(["-c", str(config)]).config_file == config
    # tls.*: see test_tls_files_are_loaded.


def test_old_names_give_the_same_settings_and_a_notice(tmp_path: Path) -> None:
    old = write(
        tmp_path,
        'in_memory = true\nstatic_peers = ["a:1"]\nbrokers = ["dtn://hub/"]\n'
        'discovery_interfaces = ["::1"]\n[routes]\n"dtn://c/*" = "dtn://b/"\n'
        "[capabilities]\ngpu = true\n",
        "old.toml",
    )
    new = write(
        tmp_path,
        'in_memory = true\nstatic_peer = ["a:1"]\nbroker = ["dtn://hub/"]\n'
        'discovery_interface = ["::1"]\n[route]\n"dtn://c/*" = "dtn://b/"\n'
        "[capability]\ngpu = true\n",
        "new.toml",
    )
    by_old = load_settings(["-c", str(old), "-n", "dtn://a/"])
    by_new = load_settings(["-c", str(new), "-n", "dtn://a/"])
    assert dataclasses.replace(by_old, config_file=None, notices=()) == dataclasses.replace(
        by_new, config_file=None
    )
    assert by_new.notices == ()
    assert [notice.split(": ", 1)[1] for notice in by_old.notices] == [
        f"'{old_name}' is the old name of '{new_name}': rename it (it is still read, for now)"
        for old_name, new_name in [
            ("static_peers", "static_peer"),
            ("brokers", "broker"),
            ("discovery_interfaces", "discovery_interface"),
            ("routes", "route"),
            ("capabilities", "capability"),
        ]
    ]
    flagged = load_settings(["--in-memory", "--require-tls", "--no-require-tls"])
    assert flagged.node.tls is None
    assert flagged.notices == (
        "--require-tls is the old name of --tls-require: it still works, for now",
        "--no-require-tls is the old name of --no-tls-require: it still works, for now",
    )


def test_the_docs_list_every_setting() -> None:
    docs = (ROOT / "docs" / "bpnode.md").read_text()
    assert SETTINGS.markdown() in docs, (
        "docs/bpnode.md's flag table is out of date; paste this in:\n" + SETTINGS.markdown()
    )


def _string_constants(tree: ast.AST) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_no_setting_is_named_outside_its_entry_more_than_once() -> None:
    """A setting is named in its table entry (its definition) and at most once more in the
    daemon's code, where it is used by name; everything else goes through ``feeds``."""
    source = (ROOT / "ucp_dtn" / "daemon" / "config.py").read_text()
    tree = ast.parse(source)
    table = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SETTINGS" for t in node.targets)
    )
    inside = _string_constants(table)
    outside = _string_constants(tree)
    for constant in inside:
        outside.remove(constant)
    other_modules = [
        constant
        for path in (ROOT / "ucp_dtn" / "daemon").glob("*.py")
        if path.name != "config.py"
        for constant in _string_constants(ast.parse(path.read_text()))
    ]
    for setting in SETTINGS:
        names = {setting.name, flag_of(setting.name), *setting.old_names}
        assert sum(inside.count(name) for name in (setting.name,)) >= 1
        uses = sum((outside + other_modules).count(name) for name in names)
        assert uses <= 1, f"{setting.name!r} is named {uses} times outside its entry"


# -- the security policy (docs/security.md) ------------------------------------------------------


def test_the_security_table_and_the_security_flag_agree(tmp_path: Path) -> None:
    """``[security]`` in the config file, key files relative to it; ``--security FILE``, key
    files relative to that file: the same policy."""
    from .security_support import ACCEPTOR_RULE, KEYS_TOML, write_keys

    here, there = tmp_path / "here", tmp_path / "there"
    for directory in (here, there):
        directory.mkdir()
        write_keys(directory)
    config = write(here, "in_memory = true\n" + KEYS_TOML + ACCEPTOR_RULE)
    policy_file = write(there, KEYS_TOML + ACCEPTOR_RULE, "policy.toml")
    by_file = load_settings(["-c", str(config)]).node.security
    by_flag = load_settings(["--in-memory", "--security", str(policy_file)]).node.security
    assert by_file is not None and by_file == by_flag
    assert [str(rule.role) for rule in by_file.rules] == ["acceptor"]
    assert load_settings(["--in-memory"]).node.security is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[security.keys]\nk = { file = "absent.hex" }\n',
            r"node\.toml: security\.keys\.k: cannot read .*absent\.hex",
        ),
        (
            '[[security.rule]]\nrole = "acceptor"\nintegrity = "k"\n',
            r"node\.toml: security\.rule\[1\]\.integrity: no key 'k' \(known: none\)",
        ),
        ("security = 3\n", r"node\.toml: security: must be a table"),
    ],
)
def test_a_bad_security_policy_stops_the_daemon_with_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    config = write(tmp_path, "in_memory = true\n" + text)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(["-c", str(config)])
    assert "\n" not in str(info.value)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(["--in-memory", "--security", str(tmp_path / "nothing.toml")])
