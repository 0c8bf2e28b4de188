//! The robot's primitives: the five actions it performs and the five percepts it senses. They
//! belong to the world, which gives them their meaning ([`super::World::act`],
//! [`super::World::sense`]); the language names them with its tokens (`lang::ast` adds the token
//! of each).

/// One of the five robot actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, arbitrary::Arbitrary)]
pub enum Action {
    Move,
    TurnLeft,
    TurnRight,
    PickMarker,
    PutMarker,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Move,
        Action::TurnLeft,
        Action::TurnRight,
        Action::PickMarker,
        Action::PutMarker,
    ];

    /// The reference's name of the action (its token, and its trace event type).
    pub const fn name(self) -> &'static str {
        match self {
            Action::Move => "move",
            Action::TurnLeft => "turnLeft",
            Action::TurnRight => "turnRight",
            Action::PickMarker => "pickMarker",
            Action::PutMarker => "putMarker",
        }
    }
}

/// One of the five primitive conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, arbitrary::Arbitrary)]
pub enum Atom {
    FrontIsClear,
    LeftIsClear,
    RightIsClear,
    MarkersPresent,
    NoMarkersPresent,
}

impl Atom {
    pub const ALL: [Atom; 5] = [
        Atom::FrontIsClear,
        Atom::LeftIsClear,
        Atom::RightIsClear,
        Atom::MarkersPresent,
        Atom::NoMarkersPresent,
    ];

    /// The reference's name of the condition (its token).
    pub const fn name(self) -> &'static str {
        match self {
            Atom::FrontIsClear => "frontIsClear",
            Atom::LeftIsClear => "leftIsClear",
            Atom::RightIsClear => "rightIsClear",
            Atom::MarkersPresent => "markersPresent",
            Atom::NoMarkersPresent => "noMarkersPresent",
        }
    }
}
