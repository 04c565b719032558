"""Pictures as part of the system (sender/images.py, sender/helpers.py): each one drawn for
email at 1x and 2x its width within a budget, at URLs that change when the picture does, put
into an email with its width, height and alt text, written out by `drip assets publish`,
and checked by `drip check`."""

from __future__ import annotations

import builtins
import io
import re
import textwrap

import pytest
from PIL import Image

from sender import images
from sender.compose import compose
from sender.config import Settings
from sender.errors import TemplateError
from sender.samples import SAMPLES
from tests.conftest import REPO, base_env

from .test_guide import NOW

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="120" viewBox="0 0 320 120">'
       '<rect x="4" y="4" width="312" height="112" rx="12" fill="#fbf7f3" stroke="#4a2c22" '
       'stroke-width="4"/><circle cx="60" cy="60" r="30" fill="#c2683f"/>'
       '<path d="M110 90 L300 30" stroke="#5f7f99" stroke-width="8"/></svg>')
ALT = "Side view: lying on her back, knees bent, feet flat, then hips lifted into one straight line"


def _entry(file, alt=ALT, width=320, height=120, **more):
    extra = "".join(f"{k} = {v}\n" for k, v in more.items())
    return f'[[images]]\nfile = "{file}"\nalt = "{alt}"\nwidth = {width}\nheight = {height}\n{extra}'


@pytest.fixture
def pictured(project):
    """The fixture project with templates/images/: one SVG, and the first course email
    showing it."""
    folder = project / "templates" / "images"
    folder.mkdir()
    (folder / "bridge.svg").write_text(SVG)
    (folder / "images.toml").write_text(_entry("bridge.svg"))
    body = project / "templates/emails/course/one.html"
    body.write_text(body.read_text() + '\n<p>The bridge:</p>\n{{ image("bridge") }}\n')
    return project


def _png(data):
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


@pytest.mark.skipif(not (REPO / "templates/images/images.toml").is_file(), reason="no shipped pictures")
def test_every_shipped_picture_is_drawn_at_1x_and_2x_within_its_budget():
    catalog = images.load_catalog(REPO / "templates")
    assert catalog.problems == []
    assert len(catalog.pictures) >= 11
    for picture in catalog:
        for scale in images.SCALES:
            data = images.render(picture, scale)
            kind, (width, height) = _png(data)
            assert kind == "PNG" and width == picture.email_width * scale, picture.name
            assert abs(height - picture.email_height * scale) <= scale, picture.name
        assert len(images.render(picture, 2)) <= picture.budget, picture.name
        assert re.fullmatch(rf"{picture.name}\.[0-9a-f]{{10}}@2x\.png", picture.filename(2))
    illustrations = [p for p in catalog if not p.placeholder]
    assert {p.email_width for p in illustrations} == {images.EMAIL_COLUMN}


def test_a_large_photo_is_resized_to_its_email_width_and_fits_its_budget(project):
    folder = project / "templates" / "images"
    folder.mkdir()
    photo = Image.effect_noise((2400, 2400), 60).convert("RGB")   # the hardest kind to squeeze
    photo.save(folder / "coach-photo.jpg", quality=95)
    (folder / "images.toml").write_text(_entry("coach-photo.jpg", width=2400, height=2400,
                                               email_width=140, budget_kb=40))
    [picture] = images.load_catalog(project / "templates")
    with Image.open(io.BytesIO(images.render(picture, 2))) as drawn:
        assert (drawn.format, drawn.size) == ("JPEG", (280, 280))
    assert len(images.render(picture, 2)) <= 40 * 1024
    assert picture.filename(1).endswith(".jpg") and "@2x" not in picture.filename(1)


def test_the_url_changes_when_the_picture_changes(pictured):
    templates = pictured / "templates"
    before = images.load_catalog(templates).get("bridge").filename()
    (templates / "images/bridge.svg").write_text(SVG.replace("#c2683f", "#5d7a52"))
    after = images.load_catalog(templates).get("bridge").filename()
    assert before != after and before.split(".")[0] == after.split(".")[0] == "bridge"


def test_an_email_carries_the_picture_with_its_size_and_alt_text(pictured, make_drip):
    for env, base in ((base_env(pictured), "https://mail.example.com/assets"),
                      (base_env(pictured, DRIP_ASSET_URL="https://cdn.coach.test/mail/"),
                       "https://cdn.coach.test/mail")):
        drip = make_drip(env)
        course = drip.campaigns.get("course")
        message = compose(drip, SAMPLES[0].subscriber, course, course.steps[0], now=NOW)
        [tag] = re.findall(r"<img [^>]*>", message.html)
        picture = images.load_catalog(pictured / "templates").get("bridge")
        assert f'src="{base}/{picture.filename(2)}"' in tag
        assert 'width="320" height="120"' in tag and f'alt="{ALT}"' in tag
        assert "max-width:320px" in tag
        assert picture.filename(2) not in message.text and "<img" not in message.text


def test_a_picture_wider_than_the_column_is_shown_at_the_column_width(pictured, make_drip):
    (pictured / "templates/images/images.toml").write_text(_entry("bridge.svg", width=1280, height=480))
    drip = make_drip(base_env(pictured))
    course = drip.campaigns.get("course")
    html = compose(drip, SAMPLES[0].subscriber, course, course.steps[0], now=NOW).html
    assert f'width="{images.EMAIL_COLUMN}" height="201"' in html


def test_an_unknown_picture_names_the_template_and_the_line(pictured, make_drip):
    body = pictured / "templates/emails/course/one.html"
    body.write_text(body.read_text().replace('image("bridge")', 'image("bridgee")'))
    drip = make_drip(base_env(pictured))
    course = drip.campaigns.get("course")
    with pytest.raises(TemplateError, match=r"course/one\.html, line 5: no picture 'bridgee'.*"
                                            r"known: bridge"):
        compose(drip, SAMPLES[0].subscriber, course, course.steps[0], now=NOW)


def test_asset_url_must_be_https(env):
    with pytest.raises(Exception, match="DRIP_ASSET_URL"):
        Settings.from_env({**env, "DRIP_ASSET_URL": "http://cdn.coach.test"})


def test_a_missing_cairo_library_says_what_to_install(pictured, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "cairosvg":
            raise OSError("no library called \"cairo-2\" was found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(images, "_renders", {})
    picture = images.load_catalog(pictured / "templates").get("bridge")
    with pytest.raises(images.ImageError, match="apt-get install libcairo2"):
        images.render(picture, 2)


def test_assets_publish_writes_the_files_the_emails_name(invoke, pictured, make_drip):
    result = invoke(pictured, "assets", "publish", "out")
    assert result.exit_code == 0, result.output
    picture = images.load_catalog(pictured / "templates").get("bridge")
    written = sorted(p.name for p in (pictured / "out").iterdir())
    assert written == sorted([picture.filename(1), picture.filename(2)])
    assert _png((pictured / "out" / picture.filename(2)).read_bytes()) == ("PNG", (640, 240))
    assert picture.filename(2) in result.output and "KB" in result.output
    assert "DRIP_ASSET_URL" in result.output            # says what to do with the folder
    again = invoke(pictured, "assets", "publish", "out", "--json")
    assert again.exit_code == 0 and '"scale": 2' in again.output


def test_assets_publish_without_pictures_says_so(invoke, project):
    result = invoke(project, "assets", "publish", "out")
    assert result.exit_code == 1
    assert "no pictures" in result.output and "images.toml" in result.output


# --- drip check ---------------------------------------------------------------------------
def _check(invoke, root, **settings):
    result = invoke(root, "check", **settings)
    return result.exit_code, result.output


def test_check_passes_with_a_good_picture(invoke, pictured):
    code, output = _check(invoke, pictured)
    assert code == 0, output


def test_check_fails_on_a_picture_without_alt_over_budget_or_missing(invoke, pictured):
    (pictured / "templates/images/big.svg").write_text(SVG)
    (pictured / "templates/images/stray.png").write_bytes(b"\x89PNG")
    (pictured / "templates/images/images.toml").write_text(textwrap.dedent(f"""\
        {_entry("bridge.svg", alt="")}
        {_entry("big.svg", budget_kb=1)}
        {_entry("gone.svg")}"""))
    code, output = _check(invoke, pictured)
    assert code == 1
    assert "templates/images/images.toml:1: bridge.svg: no alt text" in output
    assert re.search(r"templates/images/images.toml:7: big.svg: its email file \(640 px wide\) is "
                     r"\d+ KB, over its 1 KB budget", output)
    assert "templates/images/images.toml:14: gone.svg: listed, but there is no such file" in output
    assert "templates/images/stray.png: not listed in images.toml" in output


def test_check_fails_when_pictures_would_not_load_over_https(invoke, pictured):
    code, output = _check(invoke, pictured, DRIP_BASE_URL="http://localhost:8025")
    assert code == 1
    assert ("templates/images/images.toml: pictures would load from http://localhost:8025/assets, "
            "not over HTTPS") in output
    assert "templates/emails/course/one.html:5: <img src=\"http://localhost:8025/assets/bridge." in output
    assert "is not HTTPS" in output


def test_check_flags_a_placeholder_picture_in_an_email_unless_examples_are_allowed(invoke, pictured):
    listing = pictured / "templates/images/images.toml"
    listing.write_text(listing.read_text() + "placeholder = true\n")
    code, output = _check(invoke, pictured, DRIP_ALLOW_EXAMPLE_VALUES="false",
                          DRIP_FROM="Ana Coach <ana@coach-ana.com>", DRIP_BASE_URL="https://mail.coach-ana.com",
                          DRIP_POSTAL_ADDRESS="1 Main St, Seattle, WA 98101")
    assert code == 1
    assert "templates/images/bridge.svg: still the placeholder, and emails show it" in output
    assert _check(invoke, pictured)[0] == 0          # the tests' example settings allow it
