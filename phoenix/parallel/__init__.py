"""The device mesh: logical-axis rules, mesh-split embedding lookups, multi-host start-up."""
