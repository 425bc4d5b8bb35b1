//! Docker's event feed, narrowed to Galaxy's containers and mapped to `ContainerEvent`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use futures::stream::{BoxStream, StreamExt};
use galaxy_core::domain::GameId;
use galaxy_core::ports::{ContainerError, ContainerEvent};

use crate::error;

/// The label every Galaxy container carries, `galaxy.backend=1`.
pub const BACKEND_LABEL: (&str, &str) = ("galaxy.backend", "1");

/// The label naming a container's game.
pub const GAME_LABEL: &str = "galaxy.game_id";

/// Container events of containers labelled `galaxy.backend=1`, from the moment of the
/// call. The daemon does the filtering; the stream ends when the connection drops.
///
/// The request only goes out when the stream is first polled, so it asks for events
/// `since` the call: the daemon replays what happened in between (same host, same clock)
/// instead of losing it.
pub(crate) fn stream(
    docker: &Docker,
) -> BoxStream<'static, Result<ContainerEvent, ContainerError>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let filters = HashMap::from([
        ("type", vec!["container".to_owned()]),
        (
            "label",
            vec![format!("{}={}", BACKEND_LABEL.0, BACKEND_LABEL.1)],
        ),
    ]);
    let options = EventsOptionsBuilder::default()
        .since(&since)
        .filters(&filters)
        .build();
    docker
        .events(Some(options))
        .filter_map(|message| async move {
            match message {
                Ok(message) => to_event(message).map(Ok),
                Err(error) => Some(Err(error::map("the Docker event stream", error))),
            }
        })
        .boxed()
}

/// The port's view of one Docker event; `None` for one without a container id.
pub(crate) fn to_event(message: EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor?;
    let container_id = actor.id.filter(|id| !id.is_empty())?;
    let game_id = actor
        .attributes
        .as_ref()
        .and_then(|attributes| attributes.get(GAME_LABEL))
        .and_then(|id| GameId::parse(id).ok());
    Some(ContainerEvent {
        container_id,
        game_id,
        // Verbatim, e.g. `die`, `start`, `oom`, `destroy`, `health_status: unhealthy`.
        action: message.action.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    #[test]
    fn events_carry_the_container_the_game_label_and_the_action() {
        let game = "0193a4d2-7c4e-7a00-8000-000000000001";
        let message = EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([
                    (GAME_LABEL.to_owned(), game.to_owned()),
                    ("exitCode".to_owned(), "137".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        let event = to_event(message).unwrap_or_else(|| panic!("an event"));
        assert_eq!(event.container_id, "abc");
        assert_eq!(event.game_id.map(|g| g.to_string()).as_deref(), Some(game));
        assert_eq!(event.action, "die");

        let unlabelled = EventMessage {
            action: Some("start".into()),
            actor: Some(EventActor {
                id: Some("def".into()),
                attributes: Some(HashMap::from([(GAME_LABEL.to_owned(), "junk".to_owned())])),
            }),
            ..Default::default()
        };
        assert_eq!(to_event(unlabelled).and_then(|e| e.game_id), None);
        assert_eq!(to_event(EventMessage::default()), None);
    }
}
