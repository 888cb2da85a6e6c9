"""The flask CLI: users and the demo seed."""

from oauth.storage.models import User


def test_users_create_list_delete(runner, app):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Ann@Example.com",
            "--password",
            "password123",
            "--name",
            "Ann",
            "--phone",
            "+1555",
            "--admin",
        ]
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(args=["users", "list"])
    assert "ann@example.com" in listing.output and "admin" in listing.output
    with app.app_context():
        user = User.get(User.email == "ann@example.com")
        assert user.is_admin and user.name == "Ann" and user.phone == "+1555"
    result = runner.invoke(args=["users", "delete", "ann@example.com", "--yes"])
    assert result.exit_code == 0
    with app.app_context():
        assert User.select().count() == 0


def test_duplicate_user_is_one_line_error(runner):
    runner.invoke(args=["users", "create", "ann@example.com", "--password", "password123"])
    result = runner.invoke(args=["users", "create", "ANN@example.com", "--password", "password123"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_arguments_are_one_line_errors(runner):
    short = runner.invoke(args=["users", "create", "x@example.com", "--password", "short"])
    assert short.exit_code == 1 and "at least 8" in short.output
    missing = runner.invoke(args=["users", "delete", "ghost@example.com"])
    assert missing.exit_code == 1 and "no user" in missing.output
    missing = runner.invoke(
        args=["users", "set-password", "ghost@example.com", "--password", "password123"]
    )
    assert missing.exit_code == 1


def test_set_password(runner, app):
    runner.invoke(args=["users", "create", "ann@example.com", "--password", "password123"])
    result = runner.invoke(
        args=["users", "set-password", "ann@example.com", "--password", "another-pass"]
    )
    assert result.exit_code == 0
    with app.app_context():
        from oauth.accounts import users as accounts

        assert accounts.authenticate("ann@example.com", "another-pass") is not None
        assert accounts.authenticate("ann@example.com", "password123") is None


def test_users_list_json(runner):
    import json

    runner.invoke(args=["users", "create", "ann@example.com", "--password", "password123"])
    data = json.loads(runner.invoke(args=["users", "list", "--json"]).output)
    assert data[0]["email"] == "ann@example.com"
    assert "password_hash" not in data[0]


def test_demo_seeds_only_an_empty_database(runner, app):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0
    assert "demo@example.com" in first.output and "password:" in first.output
    password = first.output.split("password:")[1].split()[0]
    with app.app_context():
        from oauth.accounts import users as accounts

        assert accounts.authenticate("demo@example.com", password) is not None
    second = runner.invoke(args=["demo"])
    assert "nothing created" in second.output
    assert "password:" not in second.output


def test_usage_errors_are_one_line_with_status_1(runner):
    for args in (
        ["users", "create"],
        ["users", "create", "x@example.com", "--bogus"],
        ["keys", "add", "--alg", "HS256"],
        ["plugins", "try", "nope", "--client", "x"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)
        assert "Traceback" not in result.output
