"""The trusted core of redleaf-nb: exchange heap, types, IDL, proxies, domains."""
