"""gunicorn settings for the web process (the bind address comes from the command line)."""
workers = 2
threads = 4
worker_class = "gthread"
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# No query strings in the access log: they may hold search terms about customers.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = "127.0.0.1"
