"""`drip check` covers the broadcasts as it covers campaign emails: the front matter, the body's
template errors at the coach's own .md line, and the same message rules."""

from __future__ import annotations

from tests.broadcast_support import write_broadcast


def test_a_good_broadcast_passes_the_check(invoke, project):
    write_broadcast(project, "2026-03-10-workshop", segment="status:active")
    result = invoke(project, "check")
    assert result.exit_code == 0, result.output


def test_a_typo_in_a_broadcast_body_names_its_file_line_and_the_fix(invoke, project):
    path = write_broadcast(project, "2026-03-10-workshop",
                           body="Hi {{ subscriber.firstname }},\n\nSee you there.")
    result = invoke(project, "check")
    assert result.exit_code == 1, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "firstname" in text)
    assert f"2026-03-10-workshop.md:{line}:" in result.output, result.output
    assert "did you mean first_name?" in result.output


def test_a_broken_front_matter_is_reported_with_file_and_key(invoke, project):
    write_broadcast(project, "2026-03-10-workshop", segment="tag:", colour="blue")
    result = invoke(project, "check")
    assert result.exit_code == 1, result.output
    assert "2026-03-10-workshop.md" in result.output
    assert "colour: unknown key" in result.output
    assert "segment:" in result.output


def test_a_broadcast_body_breaking_a_message_rule_is_named(invoke, project):
    path = write_broadcast(project, "2026-03-10-workshop",
                           body='Hi,\n\n<img src="https://example.com/room.png" width="600">\n')
    result = invoke(project, "check")
    assert result.exit_code == 1, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "<img" in text)
    assert f"2026-03-10-workshop.md:{line}:" in result.output, result.output
    assert "alt" in result.output


def test_a_typo_in_a_broadcast_subject_names_the_subject_line(invoke, project):
    path = write_broadcast(project, "2026-03-10-workshop", subject="For {{ subscriber.firstname }}")
    result = invoke(project, "check")
    assert result.exit_code == 1, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("subject"))
    assert f"2026-03-10-workshop.md:{line}:" in result.output, result.output


def test_every_subject_of_an_ab_step_is_checked(invoke, project):
    # The samples all draw one variant; a typo in another must still fail the check.
    course = project / "campaigns" / "course.toml"
    text = course.read_text()
    first = next(line for line in text.splitlines() if line.startswith("subject"))
    course.write_text(text.replace(first, 'subjects = ["Lesson one", "Lesson {{ subscriber.firstname }}", '
                                          '"Lesson {{ subscriber.first_nme }}"]', 1))
    result = invoke(project, "check")
    assert result.exit_code == 1, result.output
    assert "did you mean first_name?" in result.output
    line = next(n for n, text in enumerate(course.read_text().splitlines(), 1) if text.startswith("subjects"))
    assert result.output.count(f"course.toml:{line}:") >= 2, result.output   # both broken variants
