"""`adrstack` arguments and their environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from adrstack.runtime.options import UpOptions, default_data_dir, parse


def up(argv=(), env=None) -> UpOptions:
    return parse(["up", *argv], {"HOME": "/home/u", **(env or {})}).options


def test_defaults():
    o = up()
    assert (o.vtn_port, o.api_port, o.demo, o.poll_interval, o.host) == (8080, 8000, 0, 10.0, "127.0.0.1")
    assert o.data_dir == Path("/home/u/.local/share/adrstack")
    assert not o.secure and not o.host_given


def test_secure_binds_every_address_unless_told_otherwise():
    assert (up(["--secure"]).host, up(["--secure"]).secure) == ("0.0.0.0", True)
    assert up(["--secure", "--host", "10.1.2.3"]).host == "10.1.2.3"
    assert up(env={"ADRSTACK_SECURE": "true"}).secure
    assert not up(env={"ADRSTACK_SECURE": "0"}).secure
    # Plain HTTP listens on all addresses only when asked to.
    o = up(["--host", "0.0.0.0"])
    assert o.host == "0.0.0.0" and o.host_given


def test_a_bad_secure_flag_in_the_environment_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        up(env={"ADRSTACK_SECURE": "perhaps"})
    assert e.value.code == 2 and "ADRSTACK_SECURE" in capsys.readouterr().err


def test_environment_overrides_defaults():
    o = up(env={"ADRSTACK_VTN_PORT": "9080", "ADRSTACK_API_PORT": "9000", "ADRSTACK_DATA_DIR": "/srv/adr",
                "ADRSTACK_DEMO": "3", "ADRSTACK_POLL_INTERVAL": "2.5", "ADRSTACK_HOST": "127.0.0.1"})
    assert o == UpOptions(9080, 9000, Path("/srv/adr"), 3, 2.5, "127.0.0.1", secure=False, host_given=True)


def test_command_line_overrides_environment():
    o = up(["--vtn-port", "7000", "--api-port", "7001", "--demo", "5", "--poll-interval", "1", "--host", "::1",
            "--data-dir", "/data"],
           env={"ADRSTACK_VTN_PORT": "9080", "ADRSTACK_API_PORT": "9000", "ADRSTACK_DEMO": "3",
                "ADRSTACK_POLL_INTERVAL": "20", "ADRSTACK_HOST": "10.0.0.1", "ADRSTACK_DATA_DIR": "/srv"})
    assert o == UpOptions(7000, 7001, Path("/data"), 5, 1.0, "::1")


def test_demo_event_delay_from_flag_or_environment_and_zero_means_none():
    assert up().demo_event_in == 90.0
    assert up(["--demo-event-in", "5"], {"ADRSTACK_DEMO_EVENT_IN": "30"}).demo_event_in == 5.0
    assert up(env={"ADRSTACK_DEMO_EVENT_IN": "30"}).demo_event_in == 30.0
    assert up(["--demo-event-in", "0"]).demo_event_in == 0.0


def test_simulate_hands_its_arguments_to_the_simulator_untouched():
    args = parse(["simulate", "--vens", "4", "--profile", "ev", "--help"], {"ADRSTACK_VTN_PORT": "nope"})
    assert (args.command, args.args) == ("simulate", ["--vens", "4", "--profile", "ev", "--help"])


def test_empty_environment_variable_means_default():
    assert up(env={"ADRSTACK_VTN_PORT": "", "ADRSTACK_DEMO": ""}).vtn_port == 8080


def test_relative_data_dir_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert up(["--data-dir", "state"]).data_dir == tmp_path / "state"
    assert up(["--data-dir", "~/x"]).data_dir == Path.home() / "x"


@pytest.mark.parametrize("env,platform,expected", [
    ({"HOME": "/h"}, "linux", "/h/.local/share/adrstack"),
    ({"HOME": "/h", "XDG_DATA_HOME": "/xdg"}, "linux", "/xdg/adrstack"),
    ({"HOME": "/h", "XDG_DATA_HOME": "relative"}, "linux", "/h/.local/share/adrstack"),
    ({"HOME": "/h"}, "darwin", "/h/Library/Application Support/adrstack"),
])
def test_default_data_dir_is_per_user_and_absolute(env, platform, expected):
    d = default_data_dir(env, platform)
    assert d == Path(expected) and d.is_absolute()


def test_poll_interval_is_passed_on_as_the_user_wrote_whole_seconds():
    assert up(["--poll-interval", "10"]).poll_interval_text == "10"
    assert up(["--poll-interval", "0.5"]).poll_interval_text == "0.5"


@pytest.mark.parametrize("argv,env,needle", [
    (["--vtn-port", "0"], {}, "--vtn-port"),
    (["--vtn-port", "http"], {}, "--vtn-port"),
    (["--demo", "-1"], {}, "--demo"),
    (["--poll-interval", "0"], {}, "--poll-interval"),
    (["--demo-event-in", "-5"], {}, "--demo-event-in"),
    ([], {"ADRSTACK_DEMO_EVENT_IN": "later"}, "ADRSTACK_DEMO_EVENT_IN"),
    ([], {"ADRSTACK_API_PORT": "99999"}, "ADRSTACK_API_PORT='99999' is not a valid port"),
    ([], {"ADRSTACK_POLL_INTERVAL": "soon"}, "ADRSTACK_POLL_INTERVAL"),
    (["--vtn-port", "8000"], {}, "--vtn-port and --api-port are both 8000"),
])
def test_bad_values_are_one_line_usage_errors(argv, env, needle, capsys):
    with pytest.raises(SystemExit) as e:
        up(argv, env)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_bad_up_environment_does_not_break_migrate():
    args = parse(["migrate"], {"ADRSTACK_VTN_PORT": "nope", "DATABASE_URL": "postgresql://u@h/db"})
    assert args.database_url == "postgresql://u@h/db"


def test_migrate_needs_a_database(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["migrate"], {})
    assert e.value.code == 2 and "DATABASE_URL" in capsys.readouterr().err
    assert parse(["migrate", "--database-url", "postgresql://x@y/z"], {}).database_url == "postgresql://x@y/z"


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        parse([], {})
    assert e.value.code == 2


def test_token_commands_and_their_database():
    env = {"DATABASE_URL": "postgresql://u@h/db"}
    args = parse(["token", "create", "--role", "operator", "--name", "ci"], env)
    assert (args.command, args.token_command, args.role, args.name, args.database_url) == (
        "token", "create", "operator", "ci", "postgresql://u@h/db")
    assert parse(["token", "list", "--database-url", "postgresql://x@y/z"], env).database_url == "postgresql://x@y/z"
    args = parse(["token", "revoke", "33487f592b51"], env)
    assert (args.token_command, args.id) == ("revoke", "33487f592b51")


@pytest.mark.parametrize("argv", [["token"], ["token", "create"], ["token", "create", "--role", "root"],
                                  ["token", "revoke"]])
def test_token_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(argv, {"DATABASE_URL": "postgresql://u@h/db"})
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("adrstack token")


def test_token_needs_a_database(capsys):
    with pytest.raises(SystemExit):
        parse(["token", "list"], {})
    assert "DATABASE_URL" in capsys.readouterr().err


def test_tail_takes_the_url_given_then_the_environment_else_leaves_it_to_the_running_up():
    args = parse(["tail"], {"HOME": "/home/u"})
    assert (args.nats_url, args.nats_url_source, args.subject) == (None, None, None)
    assert args.data_dir == Path("/home/u/.local/share/adrstack")
    args = parse(["tail"], {"NATS_URL": "nats://h:1", "ADRSTACK_SUBJECT_PREFIX": "t1", "ADRSTACK_DATA_DIR": "/d"})
    assert (args.nats_url, args.nats_url_source, args.subject, args.data_dir) == ("nats://h:1", "NATS_URL", "t1.>",
                                                                                  Path("/d"))
    args = parse(["tail", "--nats-url", "nats://x:2", "--data-dir", "/e", "openadr.event.>"],
                 {"NATS_URL": "nats://h:1"})
    assert (args.nats_url, args.nats_url_source, args.subject, args.data_dir) == (
        "nats://x:2", "--nats-url", "openadr.event.>", Path("/e"))
