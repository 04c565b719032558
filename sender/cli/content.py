"""Content commands: preview, check, guide build, assets publish."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from .. import checks, guide, images, preview
from ..providers.base import ACCEPTED, SCHEDULED
from ..samples import SAMPLES, get_sample
from .common import echo_json, json_option, now_option, pass_state, resolve_now


@click.command("preview")
@click.argument("step", required=False, metavar="[CAMPAIGN/STEP]")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/preview"), show_default=True, help="Folder to write the site to.")
@click.option("--open", "open_browser", is_flag=True, help="Open the site in the browser.")
@click.option("--serve", is_flag=True,
              help="Serve the site on localhost and rebuild it when a template or campaign changes.")
@click.option("--port", type=click.IntRange(0, 65535), default=preview.DEFAULT_PORT,
              show_default=True, help="Port for --serve (drip serve's is 8025).")
@click.option("--to", "to", metavar="EMAIL",
              help="Send a test of CAMPAIGN/STEP to this address instead (subject marked [TEST]).")
@click.option("--sample", type=click.Choice([s.key for s in SAMPLES]), default=SAMPLES[0].key,
              show_default=True, help="Sample subscriber for --to.")
@now_option
@pass_state
def preview_command(state, step, output, open_browser, serve, port, to, sample, now):
    """Render every email of every campaign for the sample subscribers into a local site
    (index.html: the timeline, then each email at desktop and phone width, its text and
    headers), or with --to send one email as a test through DRIP_PROVIDER.

    \b
    Example:
      drip preview --open
      drip preview --serve
      drip preview --to me@example.com welcome/guide
    """
    drip = state.drip
    if to or step:
        if not (to and step):
            raise click.UsageError("a test send needs both --to EMAIL and CAMPAIGN/STEP")
        message, result = preview.send_test(drip, step, to, now=resolve_now(now),
                                            sample=get_sample(sample))
        click.echo(f"Test of {step} ({message.subject}) to {message.to} via "
                   f"{drip.settings.provider}: {result.outcome}"
                   + (f" ({result.error})" if result.error else ""))
        if result.outcome not in (ACCEPTED, SCHEDULED):
            raise SystemExit(1)
        return
    server = preview.make_server(output, port=port) if serve else None   # a port in use: stop now
    try:
        index = preview.build_site(drip, output, now=resolve_now(now) if now else None)
    except BaseException:
        if server is not None:
            server.server_close()
        raise
    click.echo(f"Wrote {index} ({len(list(drip.campaigns))} campaigns, {len(SAMPLES)} sample "
               "subscribers).")
    for problems in drip.campaigns.broken.values():
        for problem in problems:
            click.echo(f"left out, does not load: {problem}", err=True)
    if drip.campaigns.broken and not serve:
        raise SystemExit(1)
    if not serve:
        if open_browser:
            webbrowser.open(index.resolve().as_uri())
        return
    url = f"http://{server.server_address[0]}:{server.server_address[1]}/"
    click.echo(f"Serving {url}; rebuilding on changes to {drip.settings.templates_dir} and "
               f"{drip.settings.campaigns_dir}. Ctrl-C stops.")
    if open_browser:
        webbrowser.open(url)

    def report(error):
        click.echo(f"Rebuild failed: {error}" if error else "Rebuilt.", err=bool(error))

    try:
        preview.serve(preview.Rebuilder(drip, output), server, on_rebuild=report)
    except KeyboardInterrupt:
        click.echo("Stopped.")


@click.command("check")
@json_option
@pass_state
def check_command(state, as_json):
    """Check every campaign and template; exit 1 and list each problem as FILE:LINE: message
    (with --json, for CI: a list of {file, line, rule, message}; an empty list when all pass).

    Renders every email for every sample subscriber with StrictUndefined, then checks the
    unsubscribe link and postal address in both parts, the plain-text part, the safety
    block of exercise emails, image alt text, the HTML size budget, links, and HTML/CSS
    that Gmail, Outlook or Apple Mail do not support (caniemail.com data).

    \b
    Example:
      drip check
      drip check --json
    """
    problems = checks.check_project(state.drip)
    if as_json:
        echo_json([problem.to_dict() for problem in problems])
        if problems:
            raise SystemExit(1)
        return
    if problems:
        click.echo(checks.format_report(problems))
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        raise SystemExit(1)
    click.echo("All campaigns and templates pass the checks.")


@click.group("guide")
def guide_group():
    """The pelvic floor guide (templates/guide/)."""


@guide_group.command("build")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write guide.html and guide.pdf to (default: DRIP_GUIDE_BUILD_DIR, "
                   "build/guide).")
@json_option
@pass_state
def guide_build(state, output, as_json):
    """Render the guide to a standalone HTML page and a PDF (cover, contents, page numbers).

    \b
    Example:
      drip guide build --output build/guide
    """
    built = guide.build_guide(state.drip, output)
    if as_json:
        echo_json(built.to_dict())
        return
    click.echo(f"Wrote {built.html} and {built.pdf} ({built.pages} pages).")


@click.group("assets")
def assets_group():
    """The pictures in templates/images/, made ready for email."""


@assets_group.command("publish")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@json_option
@pass_state
def assets_publish(state, folder, as_json):
    """Write every picture at 1x and 2x its email width into FOLDER, under the versioned
    names the emails use, to upload to the address set in DRIP_ASSET_URL (a CDN or your
    site). Without DRIP_ASSET_URL, `drip serve` serves them itself at DRIP_BASE_URL/assets.

    \b
    Example:
      drip assets publish build/assets
    """
    settings = state.drip.settings
    written = images.publish(settings, folder)
    if not written:
        raise click.ClickException(f"no pictures to publish: {settings.templates_dir}/images/"
                                   "images.toml lists none")
    if as_json:
        echo_json([item.to_dict() for item in written])
        return
    for item in written:
        budget = f" (budget {item.picture.budget // 1024} KB)" if item.scale == 2 else ""
        click.echo(f"{item.path}  {item.bytes / 1024:.1f} KB{budget}")
    where = (f"emails load them from {settings.asset_url}: upload the folder's files there"
             if settings.asset_url else
             "set DRIP_ASSET_URL to the address you upload these files to; until then emails "
             f"load them from {images.asset_base(settings)} (drip serve)")
    click.echo(f"Wrote {len(written)} files to {folder}; {where}.")


COMMANDS = [preview_command, check_command, guide_group, assets_group]

