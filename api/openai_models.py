"""GET /v1/models: the models of GET /models, in OpenAI's list format."""

from fastapi import APIRouter

from api.deps import CurrentUser, ServicesDep
from api.meta import models as native_models

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models")
async def list_models(user: CurrentUser, services: ServicesDep):
    listing = await native_models(services)
    return {"object": "list", "data": [
        {"id": m["id"], "object": "model", "created": 0, "owned_by": m["provider"]} for m in listing["data"]]}
