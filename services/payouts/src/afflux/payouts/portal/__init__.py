"""The portal: HTML pages for creators and brands over the payouts API's read models."""
