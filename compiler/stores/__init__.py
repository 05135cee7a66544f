"""Where ML teams keep data and models (DVC, MLflow), and the local store takt fetches them into."""
