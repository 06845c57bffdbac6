"""Everything live: the engine (``engine``), authentication (``auth``), the webinar domain
(``webinars``), notifications (``notifications``) and the background job worker (``jobs``)."""
