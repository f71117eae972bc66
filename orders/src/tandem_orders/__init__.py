"""Orders: Tandem's second app, the worked example of docs/your-own-domain.md."""
