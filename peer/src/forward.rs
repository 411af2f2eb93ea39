//! Macros that turn a core's inherent methods into the shared traits, so each peer backend
//! states only what differs: its types, its kind and whether events go before messages.
//! Every core (`election_raft::core::Node`, `election_bully::core::Node`,
//! `election_paxos::core::Node`) has the same inherent methods by design; the macros
//! forward to them by name.

/// `impl ElectionCore for $core` by forwarding to `$core`'s inherent methods of the same
/// names (`campaign`, `withdraw`, `resign`, `expire`, `handle_message`, `handle_timeout`,
/// `poll_timeout`, `poll_transmit` returning a transmit with `to` and `messages`,
/// `poll_event`, `poll_persist`, `poll_forget`, `refuses_new`, `tracked`, `stats` with
/// `ignored_elections`) and to `$codec::{encode, decode}`.
///
/// ```ignore
/// election_peer::forward_election_core! {
///     core: Node, message: Message, hard_state: HardState, kind: KIND,
///     // Events first: a loss ends the local Leadership before peers act on this step.
///     events_before_send: true,
///     codec: codec,
/// }
/// ```
#[macro_export]
macro_rules! forward_election_core {
    (
        core: $core:ty,
        message: $message:ty,
        hard_state: $hard:ty,
        kind: $kind:expr,
        events_before_send: $events_first:expr,
        codec: $codec:ident $(,)?
    ) => {
        impl $crate::ElectionCore for $core {
            type Message = $message;
            type HardState = $hard;
            type DecodeError = $crate::wire::DecodeError;

            const KIND: &'static str = $kind;
            const EVENTS_BEFORE_SEND: bool = $events_first;

            fn id(&self) -> &$crate::__private::election_core::NodeId {
                <$core>::id(self)
            }
            fn campaign(
                &mut self,
                now: ::std::time::Instant,
                election: &$crate::__private::election_core::ElectionName,
            ) -> bool {
                <$core>::campaign(self, now, election)
            }
            fn withdraw(
                &mut self,
                now: ::std::time::Instant,
                election: &$crate::__private::election_core::ElectionName,
            ) {
                <$core>::withdraw(self, now, election);
            }
            fn resign(
                &mut self,
                now: ::std::time::Instant,
                election: &$crate::__private::election_core::ElectionName,
            ) -> bool {
                <$core>::resign(self, now, election)
            }
            fn expire(
                &mut self,
                now: ::std::time::Instant,
                election: &$crate::__private::election_core::ElectionName,
            ) -> bool {
                <$core>::expire(self, now, election)
            }
            fn handle_message(
                &mut self,
                now: ::std::time::Instant,
                from: &$crate::__private::election_core::NodeId,
                message: $message,
            ) -> bool {
                <$core>::handle_message(self, now, from, message)
            }
            fn handle_timeout(&mut self, now: ::std::time::Instant) {
                <$core>::handle_timeout(self, now);
            }
            fn poll_timeout(&mut self) -> ::std::option::Option<::std::time::Instant> {
                <$core>::poll_timeout(self)
            }
            fn poll_transmit(
                &mut self,
            ) -> ::std::option::Option<(
                $crate::__private::election_core::NodeId,
                ::std::vec::Vec<$message>,
            )> {
                <$core>::poll_transmit(self).map(|t| (t.to, t.messages))
            }
            fn poll_event(&mut self) -> ::std::option::Option<$crate::CoreEvent> {
                <$core>::poll_event(self)
            }
            fn poll_persist(
                &mut self,
            ) -> ::std::option::Option<
                ::std::vec::Vec<($crate::__private::election_core::ElectionName, $hard)>,
            > {
                <$core>::poll_persist(self)
            }
            fn poll_forget(&mut self) -> ::std::option::Option<$crate::Forget> {
                <$core>::poll_forget(self)
            }
            fn refuses_new(
                &self,
                election: &$crate::__private::election_core::ElectionName,
            ) -> ::std::option::Option<usize> {
                <$core>::refuses_new(self, election)
            }
            fn tracked(&self) -> usize {
                <$core>::tracked(self)
            }
            fn ignored(&self) -> u64 {
                <$core>::stats(self).ignored_elections
            }
            fn encode(
                messages: &[$message],
                max_len: usize,
            ) -> ::std::vec::Vec<$crate::__private::Bytes> {
                $codec::encode(messages, max_len)
            }
            fn decode(
                payload: &[u8],
            ) -> ::std::result::Result<::std::vec::Vec<$message>, $crate::wire::DecodeError> {
                $codec::decode(payload)
            }
        }
    };
}

/// `impl PeerNodeConfig for $config` by forwarding to `$config`'s `validate`,
/// `node_config`, `peer_settings` and `rng_seed` field, and `$core::restore`.
///
/// ```ignore
/// election_peer::forward_peer_node_config! {
///     config: BullyConfig, core: Node, core_config: NodeConfig, hard_state: HardState,
/// }
/// ```
#[macro_export]
macro_rules! forward_peer_node_config {
    (
        config: $config:ty,
        core: $core:ty,
        core_config: $core_config:ty,
        hard_state: $hard:ty $(,)?
    ) => {
        impl $crate::PeerNodeConfig for $config {
            type Core = $core;
            type CoreConfig = $core_config;

            fn validate(&self) -> $crate::__private::election_core::Result<()> {
                <$config>::validate(self)
            }
            fn rng_seed(&self) -> ::std::option::Option<u64> {
                self.rng_seed
            }
            fn core_config(
                &self,
                seed: u64,
                incarnation: u64,
            ) -> $crate::__private::election_core::Result<$core_config> {
                self.node_config(seed, incarnation)
            }
            fn peer_settings(
                &self,
            ) -> $crate::__private::election_core::Result<$crate::PeerSettings> {
                <$config>::peer_settings(self)
            }
            fn new_core(
                config: $core_config,
                now: ::std::time::Instant,
                state: &::std::collections::BTreeMap<
                    $crate::__private::election_core::ElectionName,
                    $hard,
                >,
                floor: u64,
            ) -> $crate::__private::election_core::Result<$core> {
                <$core>::restore(
                    config,
                    now,
                    state.iter().map(|(k, v)| (k.clone(), v.clone())),
                    floor,
                )
            }
        }
    };
}
