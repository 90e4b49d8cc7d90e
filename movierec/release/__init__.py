"""Releases: the gate a candidate passes before it serves, the records of every promotion,
abort and rollback, and the `movierec release` command. Above the roles: it reads what
training registered, builds serving snapshots to check them, and moves the production
pointer that the service follows."""
