"""Reports over REST: attendance, engagement, CSV exports and the room timeline."""

from __future__ import annotations

from handlers.api import ApiHandler
from handlers.limits import HOUR, enforce
from realtime.webinars.schemas import TimelineQuery

RATINGS_PER_ADDRESS = 60  # per hour: a room behind one NAT rates, a script does not flood


class AttendanceHandler(ApiHandler):
    async def get(self, webinar_id: str, fmt: str | None = None) -> None:
        claims = await self.claims()
        reports = self.deps.reports
        if fmt == ".csv":
            self.send_csv(await self.call(reports.attendance_csv(claims, webinar_id)), "attendance.csv")
        else:
            self.send({"attendance": await self.call(reports.attendance(claims, webinar_id))})


class EngagementHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.reports.engagement(claims, webinar_id)))


class FeedbackHandler(ApiHandler):
    """GET: the caller's own rating (or null); POST: rate the webinar once."""

    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.reports.my_rating(claims, webinar_id)))

    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        body = self.body()
        ip = self.request.remote_ip
        await enforce(
            self.deps.limits, f"feedback:{ip}", RATINGS_PER_ADDRESS, HOUR, "ratings from this address"
        )
        self.send(await self.call(self.deps.reports.rate(claims, webinar_id, body)), 201)


class FeedbackReportHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.reports.feedback(claims, webinar_id)))


class ExportHandler(ApiHandler):
    """GET .../reports/questions.csv and .../reports/polls.csv."""

    async def get(self, webinar_id: str, kind: str) -> None:
        claims = await self.claims()
        reports = self.deps.reports
        export = reports.questions_csv if kind == "questions" else reports.polls_csv
        self.send_csv(await self.call(export(claims, webinar_id)), f"{kind}.csv")


class TimelineHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        query = self.query(TimelineQuery)
        self.send(await self.call(self.deps.reports.timeline(claims, webinar_id, query.since)))
