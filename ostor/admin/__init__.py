"""Admin tools: ostor-ctl, ostor-s3-admin, ostor-configure-nginx."""
