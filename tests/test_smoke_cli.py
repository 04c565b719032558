from tests.conftest import at


def test_add_confirmed_then_send_writes_eml(run, drip, project):
    result = run("subscribers", "add", "ana@example.com", "--name", "Ana", "--confirmed",
                 "--consent", "test", "--now", "2026-03-07T22:30Z")
    assert result.exit_code == 0, result.output
    result = run("send", "--now", "2026-03-07T22:31Z")
    assert result.exit_code == 0, result.output
    files = sorted((project / "outbox").glob("*.eml"))
    assert [f.name.split(".")[0] for f in files] == ["welcome"]
    sent = [d for d in drip.store.deliveries(states=("sent",))]
    assert [(d.campaign, d.step) for d in sent] == [("welcome", "hello")]
    assert sent[0].sent_at == at("2026-03-07T22:31Z")
