"""`drip doctor`: is the sending domain ready for Gmail, Yahoo and Outlook?

Since 2024 Gmail and Yahoo refuse or bin bulk mail whose From domain is not authenticated
(SPF and DKIM) and aligned (DMARC), and since 2025 Outlook refuses it outright. The doctor
reads the From domain's DNS (``dns_checks.py``, dnspython), compares the domains a message
carries, asks ``DRIP_BASE_URL`` for its certificate and its one-click unsubscribe
(``doctor_web.py``), and asks the provider what it thinks of the key and the domain
(``doctor_providers.py``, read-only calls). Each finding is a ``Check``: a status, plain
words, and where something is missing the exact record or setting to add. Nothing here
prints; the CLI shows the report.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from .dns_checks import (
    SPF_LOOKUP_LIMIT,
    Dns,
    DnsUnavailable,
    check_spf,
    dkim_problem,
    dkim_records,
    dmarc,
    tags,
)
from .doctor_providers import provider_checks
from .doctor_report import FAIL, OK, SKIP, WARN, Check, Report
from .doctor_web import web_checks
from .identity import aligned
from .providers import registry

__all__ = ["FAIL", "OK", "SKIP", "WARN", "Check", "Context", "Report", "diagnose"]

# Mailbox services whose own DMARC policy makes mail "From" them fail when a provider sends it.
FREE_MAILBOXES = {"gmail.com", "googlemail.com", "yahoo.com", "outlook.com", "hotmail.com",
                  "live.com", "aol.com", "icloud.com", "me.com", "gmx.com", "proton.me"}


class Context:
    """What every check needs: the settings, the domains in play, and the DNS. What the
    provider needs in DNS is its ``Profile``, from its folder (``providers/<name>/doctor.py``);
    the outbox has none."""

    def __init__(self, settings, lookup):
        self.settings, self.dns = settings, lookup
        self.provider = settings.provider
        self.from_domain = settings.sender.domain.lower().rstrip(".")
        doctor = registry.part(self.provider, "doctor")
        self.profile = doctor.profile(settings, self.from_domain) if doctor else None
        self.spf_include = settings.spf_include or (
            self.profile.spf_include if self.profile else "")
        self.selectors = list(settings.dkim_selectors) or list(
            self.profile.selectors if self.profile else ())
        self.dkim_domain = (self.profile and self.profile.dkim_domain) or self.from_domain
        # The Return-Path domain the provider uses, or "" when it cannot be known here.
        self.bounce_domain = self.profile.bounce_domain if self.profile else ""

    def selector_hint(self, otherwise):
        return (self.profile.selector_hint if self.profile else "") or otherwise


def diagnose(settings, *, lookup=None, web=True, provider=True, ca_bundle=None, timeout=10.0):
    """Every check, in the order the coach should fix them; returns a Report."""
    ctx = Context(settings, lookup or Dns(timeout=timeout))
    report = Report()
    report.checks += identity_checks(ctx)
    if ctx.from_domain in FREE_MAILBOXES:
        # Its DNS is not hers to change: advice about records there would mislead.
        report.checks.append(Check(
            "dns", SKIP, "SPF, DKIM, DMARC, MX", f"Not checked: {ctx.from_domain} belongs to "
            "its mailbox provider, and only a domain of your own can be set up for sending.",
            "Move DRIP_FROM to your own domain first (see above), then run `drip doctor` again."))
        if web:
            report.checks += web_checks(settings, ca_bundle=ca_bundle, timeout=timeout)
        if provider and ctx.profile is not None:
            report.checks += provider_checks(settings, ctx)
        return report
    if ctx.profile is None:
        report.checks.append(Check(
            "provider", SKIP, "Provider", f"DRIP_PROVIDER is {ctx.provider}: nothing is sent to "
            "anyone, so the DNS of the sending domain is checked without a provider in mind.",
            "Set DRIP_PROVIDER (postmark, sendgrid, mailgun, resend or smtp) and its key, then "
            "run `drip doctor` again."))
    for section in (spf_checks, dkim_checks, dmarc_checks, mx_checks):
        try:
            report.checks += section(ctx)
        except DnsUnavailable as exc:       # the rest would only wait for the same silence
            report.checks.append(Check("dns", FAIL, "DNS",
                                       f"The DNS could not be read: {exc}. SPF, DKIM, DMARC and "
                                       "MX were not checked.",
                                       "Check the network (or --dns-server), then run again."))
            break
    if web:
        report.checks += web_checks(settings, ca_bundle=ca_bundle, timeout=timeout)
    if provider and ctx.profile is not None:
        report.checks += provider_checks(settings, ctx)
    return report


# --- who the mail says it is from ------------------------------------------------------------
def identity_checks(ctx):
    settings = ctx.settings
    domain = ctx.from_domain
    title = "From, Reply-To, Return-Path and links"
    if domain in FREE_MAILBOXES:
        return [Check("alignment", FAIL, title,
                      f"DRIP_FROM is an address at {domain}. Its owner's DMARC policy tells "
                      "receivers to refuse mail from it that their own servers did not send, "
                      "so mail sent through a provider from it is refused or binned.",
                      "Send from an address on your own domain, e.g. DRIP_FROM=\"Your Name "
                      "<hello@your-domain.com>\", and set that domain up for your provider.")]
    problems, advice = [], []
    bounce = ctx.bounce_domain
    if bounce and not aligned(bounce, domain):
        problems.append(f"the provider's Return-Path domain {bounce} is not under {domain}, so "
                        "SPF cannot count for DMARC")
    if ctx.dkim_domain != domain and not aligned(ctx.dkim_domain, domain):
        problems.append(f"mail is signed (DKIM) for {ctx.dkim_domain}, which is not under {domain}")
    reply = settings.reply_to.domain.lower() if settings.reply_to else domain
    if not aligned(reply, domain):
        advice.append(f"replies go to {reply}, another domain than From ({domain}); receivers "
                      "trust mail more when the two match")
    host = (urlparse(settings.base_url).hostname or "").lower()
    if host and _is_ip(host) and host not in ("127.0.0.1", "::1"):
        advice.append(f"links and the unsubscribe address are on the bare IP address {host}; "
                      "spam filters distrust links without a domain name")
    elif host and host not in ("localhost",) and not aligned(host, domain):
        advice.append(f"links and the unsubscribe address are on {host}, another domain than "
                      f"From ({domain}); spam filters look for links on the sender's own domain")
    if problems:
        fix = (f"Use a sending domain under {domain} at the provider (e.g. MAILGUN_DOMAIN=mg."
               f"{domain}), or send From an address on the domain you set up there.")
        return [Check("alignment", FAIL, title, "Gmail's rules need the From domain to match the "
                      "domain SPF or DKIM vouches for: " + "; ".join(problems) + ".", fix)]
    if advice:
        text = "; ".join(advice)
        return [Check("alignment", WARN, title, text[:1].upper() + text[1:] + ".",
                      "Use an address and a DRIP_BASE_URL on your own domain where you can.")]
    where = f", Return-Path {bounce}" if bounce else ""
    return [Check("alignment", OK, title,
                  f"From {domain}{where}, DKIM for {ctx.dkim_domain}, replies to {reply} and "
                  f"links on {host or '-'} all belong to one domain.")]


def _is_ip(host):
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# --- SPF -------------------------------------------------------------------------------------
def spf_checks(ctx):
    domain, include = ctx.from_domain, ctx.spf_include
    spf = check_spf(ctx.dns, domain)
    record = f"v=spf1 include:{include} ~all" if include else "v=spf1 include:YOUR-PROVIDER ~all"
    title = f"SPF for {domain}"
    checks = []
    if not spf.records:
        checks.append(Check("spf", FAIL, title,
                            f"{domain} has no SPF record, the list of servers allowed to send "
                            "its mail. Without one, receivers cannot tell your mail from forgery.",
                            f"Add a TXT record at {domain}: {record} (if a mailbox service sends "
                            "your own mail, add its include too, e.g. include:_spf.google.com)."))
    elif len(spf.records) > 1:
        checks.append(Check("spf", FAIL, title,
                            f"{domain} has {len(spf.records)} SPF records; receivers then ignore "
                            "all of them: " + " | ".join(spf.records),
                            f"Merge them into one TXT record at {domain} (one v=spf1 with every "
                            "include), and delete the others."))
    elif spf.lookups > SPF_LOOKUP_LIMIT:
        checks.append(Check("spf", FAIL, title,
                            f"{domain}'s SPF record needs {spf.lookups} DNS lookups (includes "
                            f"counted through); receivers stop at {SPF_LOOKUP_LIMIT} and treat the "
                            "record as broken.",
                            "Remove includes of services that no longer send for you, or replace "
                            "them with their ip4:/ip6: ranges, until it needs 10 or fewer."))
    elif spf.problems:
        checks.append(Check("spf", FAIL, title, f"{domain}'s SPF record is broken: "
                            + "; ".join(spf.problems) + ".",
                            "Fix or remove the includes named above."))
    elif ctx.bounce_domain == domain and include and include not in spf.includes:
        checks.append(Check("spf", FAIL, title,
                            f"{domain}'s SPF record does not include {include}, the servers your "
                            f"provider sends from: {spf.records[0]}",
                            f"Add include:{include} to it, before the ~all or -all: "
                            f"{_with_include(spf.records[0], include)}"))
    elif re.search(r"(?i)(?:^|\s)\+?all(?:\s|$)", spf.records[0]):
        checks.append(Check("spf", FAIL, title,
                            f"{domain}'s SPF record ends in +all, which allows every server in "
                            f"the world to send as {domain}: {spf.records[0]}",
                            "End it with ~all (or -all) instead."))
    elif ctx.bounce_domain == domain and not include:
        checks.append(Check("spf", WARN, title,
                            f"{domain} has one SPF record ({spf.records[0]}), within the lookup "
                            "limit; whether it covers your SMTP server cannot be told from here.",
                            "Set DRIP_SPF_INCLUDE to the include your mail service documents."))
    else:
        checks.append(Check("spf", OK, title, f"One record, needing {spf.lookups} of the "
                            f"{SPF_LOOKUP_LIMIT} DNS lookups allowed: {spf.records[0]}"))
    checks += _return_path_checks(ctx)
    return checks


def _with_include(record, include):
    parts = record.split()
    at = next((i for i, p in enumerate(parts) if p.lower().endswith("all")), len(parts))
    return " ".join([*parts[:at], f"include:{include}", *parts[at:]])


def _return_path_checks(ctx):
    profile, bounce = ctx.profile, ctx.bounce_domain
    if profile is None or bounce == ctx.from_domain:
        return []
    title = "Return-Path (bounce) domain"
    if not bounce:
        return [Check("return-path", SKIP, title,
                      f"{profile.name} picks the Return-Path subdomain when you set up the domain "
                      "(e.g. em1234.your-domain); the provider check reads it where the key "
                      "allows.")]
    if profile.bounce_cname:
        target = ctx.dns.cname(bounce)
        if target == profile.bounce_cname:
            return [Check("return-path", OK, title, f"{bounce} points to {target}, so bounces "
                          f"come back through {profile.name} and SPF aligns with your domain.")]
        return [Check("return-path", WARN, title,
                      f"{bounce} does not point to {profile.bounce_cname}"
                      + (f" (it points to {target})" if target else "")
                      + f". {profile.name} then bounces through its own domain: DKIM still "
                        "passes DMARC, but SPF does not count for it.",
                      f"Add a CNAME record at {bounce}: {profile.bounce_cname} (and set it as the "
                      f"custom Return-Path in {profile.name}).")]
    spf = check_spf(ctx.dns, bounce)
    include = ctx.spf_include
    record = f"v=spf1 include:{include} ~all"
    if len(spf.records) == 1 and include in spf.includes and spf.lookups <= SPF_LOOKUP_LIMIT:
        return [Check("return-path", OK, title, f"{bounce} has SPF with include:{include}.")]
    found = f" (found: {' | '.join(spf.records)})" if spf.records else ""
    return [Check("return-path", FAIL, title,
                  f"{profile.name} sends your mail with the Return-Path {bounce}, and its SPF "
                  f"does not allow {profile.name}'s servers{found}.",
                  f"Add a TXT record at {bounce}: {record} (exactly one SPF record there).")]


# --- DKIM ------------------------------------------------------------------------------------
def dkim_checks(ctx):
    domain, selectors = ctx.dkim_domain, ctx.selectors
    title = f"DKIM for {domain}"
    if not selectors:
        return [Check("dkim", WARN, title, "Which DKIM selector your provider signs with cannot be "
                      "guessed, so no DKIM record was looked up.",
                      ctx.selector_hint("Set DRIP_DKIM_SELECTORS") + ".")]
    found, broken = [], []
    for selector in selectors:
        records = dkim_records(ctx.dns, selector, domain)
        if len(records) > 1:
            broken.append(f"{selector}._domainkey.{domain} has {len(records)} key records")
        elif records:
            problem = dkim_problem(records[0])
            (broken.append(f"{selector}._domainkey.{domain}: {problem}") if problem
             else found.append(selector))
    if broken:
        return [Check("dkim", FAIL, title, "A DKIM record is there but receivers cannot use it: "
                      + "; ".join(broken) + ".",
                      f"Copy the record again from {ctx.profile.name if ctx.profile else 'your mail'}"
                      ", whole: long keys are split in pieces, and each piece must be there.")]
    if not found:
        names = ", ".join(f"{s}._domainkey.{domain}" for s in selectors)
        return [Check("dkim", FAIL, title,
                      f"No DKIM key found (looked at {names}). Without DKIM, Gmail and Yahoo "
                      "refuse bulk mail, and nothing proves the mail was not changed on the way.",
                      f"Add the DKIM record your provider shows for {domain} (a TXT or CNAME "
                      "record at SELECTOR._domainkey." + domain + "); "
                      + ctx.selector_hint("then run `drip doctor` again") + ".")]
    return [Check("dkim", OK, title, "Key found and well-formed at "
                  + ", ".join(f"{s}._domainkey.{domain}" for s in found) + ".")]


# --- DMARC -----------------------------------------------------------------------------------
def dmarc_checks(ctx):
    domain = ctx.from_domain
    where, records = dmarc(ctx.dns, domain)
    title = f"DMARC for {domain}"
    suggested = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
    if not records:
        return [Check("dmarc", FAIL, title,
                      f"{domain} has no DMARC record. Gmail and Yahoo require one from bulk "
                      "senders, and it tells receivers what to do with mail that fails SPF and "
                      "DKIM.", f"Add a TXT record at _dmarc.{domain}: {suggested}")]
    if len(records) > 1:
        return [Check("dmarc", FAIL, title, f"_dmarc.{where} has {len(records)} DMARC records; "
                      "receivers then ignore DMARC for the domain.",
                      f"Keep one TXT record at _dmarc.{where}, e.g. {suggested}")]
    fields = tags(records[0])
    policy = fields.get("p", "").lower()
    checks = []
    if policy not in ("none", "quarantine", "reject"):
        checks.append(Check("dmarc", FAIL, title, f"The DMARC record at _dmarc.{where} has no "
                            f"valid policy (p=none, quarantine or reject): {records[0]}",
                            f"Replace it with: {suggested}"))
    elif "mailto:" not in fields.get("rua", "").lower():
        checks.append(Check("dmarc", FAIL, title,
                            f"The DMARC record at _dmarc.{where} has no reporting address (rua), "
                            "so nobody hears when mail in your name fails or is forged.",
                            f"Add rua=mailto:dmarc-reports@{domain} to it: "
                            f"{_with_rua(records[0], domain)}"))
    elif policy == "none":
        checks.append(Check("dmarc", WARN, title,
                            "The policy is p=none: receivers only report. That meets Gmail's rule; "
                            "once the reports show all your mail passing, move to p=quarantine.",
                            f"Later: change p=none to p=quarantine at _dmarc.{where}."))
    else:
        checks.append(Check("dmarc", OK, title, f"p={policy}, reports to {fields['rua']}."))
    checks.append(_alignment_modes(ctx, fields, where))
    return checks


def _with_rua(record, domain):
    return record.rstrip().rstrip(";") + f"; rua=mailto:dmarc-reports@{domain}"


def _alignment_modes(ctx, fields, where):
    title = "DMARC alignment"
    domain, dkim, bounce = ctx.from_domain, ctx.dkim_domain, ctx.bounce_domain
    if fields.get("adkim", "r").lower() == "s" and dkim != domain:
        return Check("dmarc-alignment", FAIL, title,
                     f"adkim=s (strict) needs the DKIM domain to be exactly {domain}, but mail "
                     f"is signed for {dkim}.", f"Remove adkim=s from _dmarc.{where}.")
    if fields.get("aspf", "r").lower() == "s" and bounce and bounce != domain:
        return Check("dmarc-alignment", WARN, title,
                     f"aspf=s (strict) needs the Return-Path to be exactly {domain}, but it is "
                     f"{bounce}: only DKIM can pass DMARC.", f"Remove aspf=s from _dmarc.{where}.")
    return Check("dmarc-alignment", OK, title, "Relaxed alignment: a provider's subdomain of "
                 f"{domain} counts as {domain}.")


# --- MX --------------------------------------------------------------------------------------
def mx_checks(ctx):
    domain = ctx.from_domain
    title = f"MX for {domain}"
    hosts = ctx.dns.mx(domain)
    if not hosts or all(host in ("", ".") for _, host in hosts):
        what = "says it takes no mail (a null MX)" if hosts else "has no MX record"
        return [Check("mx", FAIL, title,
                      f"{domain} {what}, so replies to {ctx.settings.sender.addr_spec} go "
                      "nowhere, and some receivers refuse mail From a domain that cannot take "
                      "any.", f"Add the MX records your mailbox service gives for {domain} "
                      f"(e.g. MX 10 mx.your-mailbox-service.com).")]
    return [Check("mx", OK, title, "Mail to the domain goes to "
                  + ", ".join(f"{host} ({pref})" for pref, host in hosts) + ".")]
