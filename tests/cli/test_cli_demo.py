"""`okr-sync demo`: the whole flow on the built-in sandbox, without credentials."""

from __future__ import annotations

from typer.testing import CliRunner

from okr_sync.cli.main import app

runner = CliRunner()


def test_demo_given_no_credentials_runs_the_whole_flow(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--issues", "300"], env={})
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "pass 3" in result.stdout and "reply  slack:C0DEMO0001" in result.stdout
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind
