"""``auditor sign``: recursive, selective Notary Project signing of multi-platform images.

``plan`` (pure) decides which nodes to sign and why; ``keys`` reads the key and chain;
``existing`` finds what this certificate already signed; ``tsa`` asks a timestamp authority;
``publish`` writes signatures to a registry or a layout; ``command`` runs it all through the
composition root; ``report`` prints it; ``testkey`` makes a throw-away identity; ``entry``
holds the subcommands' arguments.
"""
