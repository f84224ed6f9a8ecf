#!/bin/sh
# Without systemd: spawn-fcgi creates the socket and hands it to mcp-fcgi on fd 0,
# the same way mod_fcgid does. mcp-fcgi serves it with its own worker threads
# (server.workers), so one process is enough (-F 1). The socket is the web server's user's
# alone (www-data, mode 0600): whoever can connect chooses REMOTE_ADDR, and other sites'
# PHP often shares the www-data group.
#
#   deploy/spawn-fcgi.sh            (as root; stop with: kill "$(cat /run/mcp-fcgi/mcp-fcgi.pid)")
set -eu
install -d -m 0755 /run/mcp-fcgi
install -d -m 0700 -o mcp-fcgi -g mcp-fcgi /var/lib/mcp-fcgi
exec spawn-fcgi -s /run/mcp-fcgi/mcp-fcgi.sock -M 0600 -U www-data -G www-data \
    -u mcp-fcgi -g mcp-fcgi -P /run/mcp-fcgi/mcp-fcgi.pid -F 1 \
    -- /usr/bin/env MCP_FCGI_CONFIG=/etc/mcp-fcgi/config.json /usr/bin/mcp-fcgi serve
