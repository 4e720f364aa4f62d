"""Web pages and real-time feeds for kiosks, hall and window displays, and consoles."""
