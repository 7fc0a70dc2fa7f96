"""FastAPI hello: the ASGI runtime benchmark's app (bench/asgi/)."""
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello():
    return {"message": "Hello, World!"}
