"""Local stand-ins for the outside systems, speaking their real wire format and recording what they got."""
