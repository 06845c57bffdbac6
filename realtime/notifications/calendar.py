"""Calendar files (iCalendar, RFC 5545/5546, built with the ``icalendar`` library) and
add-to-calendar links for a webinar.

One event per webinar: its ``UID`` never changes, its ``SEQUENCE`` is the webinar's
``ics_sequence`` (raised by every reschedule), so a calendar that imported the invitation moves
the event when an update arrives, and removes it on ``METHOD:CANCEL``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//webinar-server//EN"


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def span(webinar: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    starts = _aware(webinar["starts_at"])
    return starts, starts + dt.timedelta(minutes=int(webinar.get("duration_minutes") or 60))


def uid(webinar: dict[str, Any], domain: str) -> str:
    return f"webinar-{webinar['_id']}@{domain}"


def invitation(
    webinar: dict[str, Any],
    *,
    domain: str,
    organizer: str,
    attendee: str,
    url: str,
    cancel: bool = False,
) -> bytes:
    """The ``.ics`` of the webinar for one attendee: ``METHOD:REQUEST`` (new or updated), or
    ``METHOD:CANCEL``."""
    starts, ends = span(webinar)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", uid(webinar, domain))
    event.add("sequence", int(webinar.get("ics_sequence", 0)) + (1 if cancel else 0))
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", starts.astimezone(dt.UTC))
    event.add("dtend", ends.astimezone(dt.UTC))
    event.add("summary", str(webinar.get("title") or "Webinar"))
    description = str(webinar.get("description") or "")
    event.add("description", f"{description}\n\nJoin: {url}".strip())
    event.add("url", url)
    event.add("location", url)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    org = vCalAddress(f"mailto:{organizer}")
    org.params["cn"] = vText("Webinars")
    event.add("organizer", org)
    who = vCalAddress(f"mailto:{attendee}")
    who.params["role"] = vText("REQ-PARTICIPANT")
    who.params["rsvp"] = vText("FALSE")
    event.add("attendee", who)
    cal.add_component(event)
    return bytes(cal.to_ical())


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def add_links(webinar: dict[str, Any], url: str) -> dict[str, str]:
    """Add-to-calendar links: Google Calendar and Outlook.com, by name."""
    starts, ends = span(webinar)
    title = str(webinar.get("title") or "Webinar")
    details = f"Join: {url}"
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {"action": "TEMPLATE", "text": title, "dates": f"{_stamp(starts)}/{_stamp(ends)}", "details": details}
    )
    outlook = "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": title,
            "startdt": starts.astimezone(dt.UTC).isoformat(),
            "enddt": ends.astimezone(dt.UTC).isoformat(),
            "body": details,
        }
    )
    return {"Google Calendar": google, "Outlook": outlook}
