"""The sandbox: local stand-ins for AWS (moto), the parties' Kubernetes API servers (emulators)
and their KMS nodes (simulators started when a StatefulSet is applied). CLI: ``tools/sandbox``;
see docs/sandbox.md.
"""
