"""An ASGI middleware (FastAPI, Starlette, any ASGI app) that logs each request to a plumb monitor:
latency, errors (5xx or an exception), and the prediction when the endpoint puts one in
``scope["state"]["prediction"]`` (FastAPI: ``request.state.prediction = ...``).

    from fastapi import FastAPI
    from plumb_monitor import Monitor
    from asgi_middleware import PlumbMiddleware

    app = FastAPI()
    app.add_middleware(PlumbMiddleware, monitor=Monitor("iris-prod", "http://plumb:5000"))

    @app.post("/predict")
    def predict(request: Request, features: dict):
        y = model.predict(...)
        request.state.prediction = int(y)
        return {"prediction": int(y), "request_id": request.state.request_id}
"""
import time
import uuid


class PlumbMiddleware:
    def __init__(self, app, monitor, paths=("/predict", "/invocations")):
        self.app = app
        self.monitor = monitor
        self.paths = tuple(paths)

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or not scope.get("path", "").startswith(self.paths):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        request_id = state.setdefault("request_id", uuid.uuid4().hex)
        status = {"code": 500}

        async def send_and_watch(message):
            if message.get("type") == "http.response.start":
                status["code"] = message.get("status", 500)
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            self.monitor.log(
                request_id=request_id,
                latency_ms=(time.perf_counter() - start) * 1000.0,
                error=status["code"] >= 500,
                prediction=state.get("prediction"),
                segment={"path": scope.get("path", "")},
            )
