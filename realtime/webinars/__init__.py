"""The webinar domain: lifecycle and registration, the live room's chat, Q&A, polls and stage,
who may use which room channel, and the reports after the end."""
