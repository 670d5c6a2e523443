"""A conversation is a tree (services/tree.py): regenerate an answer, edit a sent message,
continue an answer cut short, and switch the branch shown. Each new answer is an ordinary
generation: followed with GET /stream/{generation_id} or a socket's `resume`."""

from fastapi import APIRouter

from api.deps import ServicesDep, UlidPath
from api.openapi import errors
from api.principal import CurrentUser
from models.schemas import BranchOut, EditIn, SwitchIn, SwitchOut
from services import tree
from services.container import Services
from services.generations.service import Accepted

router = APIRouter(tags=["sessions"])
_BRANCH_ERRORS = errors(404, 409, 429)


def _out(accepted: Accepted) -> BranchOut:
    return BranchOut(
        session_id=accepted.session_id,
        generation_id=accepted.generation_id,
        status="running" if accepted.position == 0 else "queued",
        position=accepted.position,
    )


async def _branch(
    services: Services, user_id: str, session_id: str, message_id: str, op: str, body: EditIn | None = None
) -> BranchOut:
    return _out(
        await tree.branch(
            services,
            tree.Branch(
                user_id,
                session_id.upper(),
                message_id.upper(),
                op,
                body.content if body else None,
                body.client_msg_id if body else None,
            ),
        )
    )


@router.post(
    "/sessions/{session_id}/messages/{message_id}/regenerate",
    status_code=202,
    response_model=BranchOut,
    responses=_BRANCH_ERRORS,
)
async def regenerate(session_id: UlidPath, message_id: UlidPath, user: CurrentUser, services: ServicesDep) -> BranchOut:
    """A new answer to the same user message, kept beside the earlier ones (also: retry a
    failed one)."""
    return await _branch(services, user.id, session_id, message_id, "regenerate")


@router.post(
    "/sessions/{session_id}/messages/{message_id}/edit",
    status_code=202,
    response_model=BranchOut,
    responses=_BRANCH_ERRORS,
)
async def edit(
    session_id: UlidPath, message_id: UlidPath, body: EditIn, user: CurrentUser, services: ServicesDep
) -> BranchOut:
    """The edited text as a new version of the message (a new branch from its parent) and
    its answer; the old branch stays."""
    return await _branch(services, user.id, session_id, message_id, "edit", body)


@router.post(
    "/sessions/{session_id}/messages/{message_id}/continue",
    status_code=202,
    response_model=BranchOut,
    responses=_BRANCH_ERRORS,
)
async def continue_answer(
    session_id: UlidPath, message_id: UlidPath, user: CurrentUser, services: ServicesDep
) -> BranchOut:
    """A new answer that extends one cut short (length, timeout, interruption, cancel)."""
    return await _branch(services, user.id, session_id, message_id, "continue")


@router.put("/sessions/{session_id}/active", response_model=SwitchOut, responses=errors(404))
async def switch(session_id: UlidPath, body: SwitchIn, user: CurrentUser, services: ServicesDep) -> SwitchOut:
    """Shows the branch through `message_id` (down to its newest message), stored."""
    leaf = await tree.switch(services, user.id, session_id.upper(), body.message_id)
    return SwitchOut(session_id=session_id.upper(), active_leaf_id=leaf)
