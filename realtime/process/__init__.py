"""The server as operating-system processes: the listening sockets, the supervisor of several worker
processes on one port, each worker's index, the drain on SIGTERM, and the registry of the processes
sharing a database (docs/deploy.md, "Processes on one host" and "Stopping")."""
