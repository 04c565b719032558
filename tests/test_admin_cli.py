"""`drip admin set-password`: the dashboard's password, stored only as an argon2id hash."""

from __future__ import annotations

from argon2 import PasswordHasher

from sender.web.admin import auth
from tests.conftest import at

PASSWORD = "four unrelated words here"


def test_set_password_from_stdin_stores_only_an_argon2id_hash(run, drip):
    result = run("admin", "set-password", "--password-stdin", "--now", "2026-03-09T18:00Z",
                 input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Password set for coach" in result.output and "/admin" in result.output
    assert PASSWORD not in result.output
    stored = drip.store.admin_password("coach")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    [entry] = drip.store.audit_log(limit=5)
    assert (entry["user"], entry["action"], entry["at"]) == ("coach", "password set",
                                                              at("2026-03-09T18:00Z"))


def test_the_prompt_asks_twice_and_a_new_password_logs_the_name_out(run, drip):
    drip.store.add_admin_session("old", name="helper", csrf="c", now=at("2026-03-09T18:00Z"))
    drip.store.add_admin_session("other", name="coach", csrf="c", now=at("2026-03-09T18:00Z"))
    result = run("admin", "set-password", "--user", "helper", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Password: " in result.output and "Again: " in result.output
    assert PASSWORD not in result.output
    assert drip.store.admin_session("old") is None and drip.store.admin_session("other")
    assert drip.store.admin_password("helper").startswith("$argon2id$")
    mismatch = run("admin", "set-password", input=f"{PASSWORD}\n{PASSWORD}x\n" * 3)
    assert mismatch.exit_code != 0 and drip.store.admin_password("coach") is None


def test_bad_passwords_and_names_are_refused_with_the_reason(run, drip):
    for argv, stdin, code, words in (
            (["--password-stdin"], "too short\n", 1, "at least 12 characters"),
            (["--password-stdin"], "", 2, "no password on standard input"),
            (["--password-stdin"], " " * 14 + "\n", 1, "only spaces"),
            (["--password-stdin", "--user", "two words"], PASSWORD + "\n", 1, "user name")):
        result = run("admin", "set-password", *argv, input=stdin)
        assert result.exit_code == code and words in result.output, (argv, result.output)
        assert "Traceback" not in result.output
    assert not drip.store.has_admin_users()


def test_drip_admin_off_is_named_when_the_password_is_set(run, drip):
    result = run("admin", "set-password", "--password-stdin", input=PASSWORD + "\n",
                 extra_env={"DRIP_ADMIN": "off"})
    assert result.exit_code == 0 and "DRIP_ADMIN=off keeps it off" in result.output
    assert drip.store.has_admin_users()


def test_a_login_checks_the_hash_the_command_stored(run, drip):
    run("admin", "set-password", "--password-stdin", input=PASSWORD + "\n")
    now = at("2026-03-09T18:00Z")
    assert auth.log_in(drip.store, "coach", PASSWORD + "!", ip="127.0.0.1", now=now).outcome == "wrong"
    good = auth.log_in(drip.store, "coach", PASSWORD, ip="127.0.0.1", now=now)
    assert good.outcome == "ok" and drip.store.admin_session(auth.token_hash(good.token))
    assert auth.log_in(drip.store, "nobody", PASSWORD, ip="127.0.0.1", now=now).outcome == "wrong"
