"""The clicks API's routes besides the redirect (a raw ASGI layer); ``create_app``
includes them."""
