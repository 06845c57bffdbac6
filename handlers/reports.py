"""Reports over REST: attendance, engagement, CSV exports and the room timeline."""

from __future__ import annotations

from handlers.api import ApiHandler
from realtime.webinars.schemas import TimelineQuery


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
