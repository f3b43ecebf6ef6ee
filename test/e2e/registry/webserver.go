package testregistry

import "fmt"

// nginxScript stands in for nginx with busybox httpd, showing what critest
// checks of nginx: PID 1's cmdline says "master process", `pidof nginx`
// finds the PID in /var/run/nginx.pid, GET / answers 200, and the stop signal
// (TERM, or QUIT for the host-network image) ends it. %d is the port.
const nginxScript = `#!/bin/sh
if [ "$1" != --master ]; then
	# Become the master: /usr/sbin/nginx links to busybox, so the kernel
	# names the process "nginx"; argv[0] ends in "/sh" because busybox picks
	# its applet by the base name of argv[0].
	exec -a "nginx: master process /bin/sh" /usr/sbin/nginx "$0" --master
fi
echo $$ >/var/run/nginx.pid
# The kernel drops signals that PID 1 has no handler for, and httpd installs
# none, so this shell stays in front of it and passes the stop on.
trap 'kill $!; exit 0' TERM QUIT INT
httpd -f -p %d -h /usr/share/nginx/html &
wait
`

// httpdScript stands in for Apache httpd with busybox httpd: it serves port
// 80, says "httpd" in its log, and stops on SIGWINCH, Apache's graceful stop.
const httpdScript = `#!/bin/sh
echo "httpd: serving /usr/local/apache2/htdocs on port 80"
trap 'kill $!; exit 0' WINCH TERM INT
httpd -f -p 80 -h /usr/local/apache2/htdocs &
wait
`

func nginxTree(port int) tree {
	t := tree{}
	t.file("usr/local/bin/nginx-foreground", 0o755, fmt.Appendf(nil, nginxScript, port))
	t.symlink("usr/sbin/nginx", "/bin/busybox")
	t.file("usr/share/nginx/html/index.html", 0o644, []byte("<h1>Welcome to nginx!</h1>\n"))
	return t
}

func httpdTree() tree {
	t := tree{}
	t.file("usr/local/bin/httpd-foreground", 0o755, []byte(httpdScript))
	t.file("usr/local/apache2/htdocs/index.html", 0o644, []byte("<h1>It works!</h1>\n"))
	return t
}
