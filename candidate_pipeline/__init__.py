"""The For You request path: sources -> hydrators -> filters -> scorers -> selector."""
