"""A TCP/IP stack as safe domain code: Ethernet, ARP, IPv4, ICMP echo, UDP echo and
TCP (redleaf_nb/apps/tcpip/tcp.py), joined in stack.py. The paper's httpd runs on
smoltcp; this is ours, small enough to read."""
