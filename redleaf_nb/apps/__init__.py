"""Application domains: benchmark callees, and (later) maglev, kvstore, httpd, rv6."""
