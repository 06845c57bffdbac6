"""Notifications: the inbox and live delivery, preferences, Web Push, and the triggers the webinar
domain fires."""
